package console

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// threadData is a thread's page: the conversation beside the record.
type threadData struct {
	PatientID   string
	PatientName string
	DateOfBirth string
	Thread      *mtmv1.Thread
	Messages    []threadMessage
	ClaimedByMe bool
	Closed      bool
	// ReplyID is the reply form's client message id: one per rendered
	// form, so a double submit sends one message.
	ReplyID string
	Draft   string

	Medications []medicationRow
	Allergies   []*mtmv1.Allergy
	ActionItems []*mtmv1.ActionItem
	OtherInfo   string
}

type threadMessage struct {
	*mtmv1.Message
	FromPatientSide bool
}

// medicationRow is a current medicine with its adherence.
type medicationRow struct {
	*mtmv1.Medication
	PDC   string // "92 %" or "" when unknown
	Below bool   // below the 80 % threshold
}

func (c *Console) threadRoutes() {
	c.Page("GET /console/patients/{pid}/threads/{tid}", c.thread)
	c.Page("POST /console/patients/{pid}/threads/{tid}/claim", c.claimThread)
	c.Page("POST /console/patients/{pid}/threads/{tid}/reply", c.replyThread)
	c.Page("POST /console/patients/{pid}/threads/{tid}/close", c.closeThread)
}

// newFormToken returns a fresh random token for a form that creates
// something (the API's client id), e.g. "cm_…".
func newFormToken(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// loadThread gathers the page through the API: the thread (from the
// patient's threads), its messages (marked read), the record and the
// adherence.
func (c *Console) loadThread(rq *Request) (threadData, error) {
	ctx := rq.Context()
	pid, tid := rq.R.PathValue("pid"), rq.R.PathValue("tid")
	var d threadData
	threads, err := rq.API.Messaging.ListThreads(ctx, connect.NewRequest(&mtmv1.ListThreadsRequest{PatientId: pid, PageSize: 100}))
	if err != nil {
		return d, err
	}
	for _, t := range threads.Msg.GetThreads() {
		if t.GetId() == tid {
			d.Thread = t
		}
	}
	if d.Thread == nil {
		return d, connect.NewError(connect.CodeNotFound, fmt.Errorf("thread not found"))
	}
	rec, err := rq.API.Care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: pid}))
	if err != nil {
		return d, err
	}
	msgs, err := rq.API.Messaging.ListMessages(ctx, connect.NewRequest(&mtmv1.ListMessagesRequest{ThreadId: tid, PageSize: 200}))
	if err != nil {
		return d, err
	}
	adh, err := rq.API.Care.GetPatientAdherence(ctx, connect.NewRequest(&mtmv1.GetPatientAdherenceRequest{PatientId: pid}))
	if err != nil {
		return d, err
	}
	p := rec.Msg.GetPatient()
	d.PatientID, d.PatientName, d.DateOfBirth = pid, strings.TrimSpace(p.GetGivenName()+" "+p.GetFamilyName()), p.GetDateOfBirth()
	d.ClaimedByMe = d.Thread.GetClaimedBy() == rq.Session.AccountID
	d.Closed = d.Thread.GetState() == mtmv1.ThreadState_THREAD_STATE_CLOSED
	var last int64
	asker := ""
	for i, m := range msgs.Msg.GetMessages() {
		if i == 0 {
			asker = m.GetAuthorId() // the patient or their caregiver
		}
		d.Messages = append(d.Messages, threadMessage{Message: m, FromPatientSide: m.GetAuthorId() == pid || m.GetAuthorId() == asker})
		last = max(last, m.GetSeq())
	}
	if last > 0 && d.Thread.GetUnreadCount() > 0 {
		if _, err := rq.API.Messaging.MarkRead(ctx, connect.NewRequest(&mtmv1.MarkReadRequest{ThreadId: tid, ReadThroughSeq: last})); err != nil {
			return d, err
		}
	}
	pdc := map[string]*mtmv1.MedicationAdherence{}
	for _, a := range adh.Msg.GetMedications() {
		pdc[a.GetMedicationId()] = a
	}
	for _, m := range rec.Msg.GetMedicationList().GetMedications() {
		if m.GetStoppedOn() != "" {
			continue
		}
		row := medicationRow{Medication: m}
		if a, ok := pdc[m.GetId()]; ok {
			row.PDC = fmt.Sprintf("%.0f %%", 100*a.GetProportionOfDaysCovered())
			row.Below = a.GetBelowThreshold()
		}
		d.Medications = append(d.Medications, row)
	}
	d.Allergies = rec.Msg.GetMedicationList().GetAllergies()
	d.OtherInfo = rec.Msg.GetMedicationList().GetOtherInformation()
	d.ActionItems = rec.Msg.GetActionPlan().GetItems()
	if d.ReplyID, err = newFormToken("cm_"); err != nil {
		return d, err
	}
	return d, nil
}

func (c *Console) thread(rq *Request) error {
	return c.showThread(rq, http.StatusOK, nil, "", flashes[rq.R.URL.Query().Get("done")])
}

// flashes are the confirmations a redirect after a POST may ask for.
var flashes = map[string]string{"claimed": "You claimed this thread.", "sent": "Reply sent.", "closed": "Thread closed."}

func (c *Console) showThread(rq *Request, status int, form *FormErrors, draft, flash string) error {
	d, err := c.loadThread(rq)
	if err != nil {
		return err
	}
	d.Draft = draft
	return rq.Render(status, "thread.html", View{Title: d.Thread.GetSubject(), Nav: "inbox", Data: d, Form: form, Flash: flash})
}

func (c *Console) threadDone(rq *Request, what string) error {
	return rq.Redirect(threadLink(rq.R.PathValue("pid"), rq.R.PathValue("tid")) + "?done=" + what)
}

func (c *Console) claimThread(rq *Request) error {
	_, err := rq.API.Messaging.ClaimThread(rq.Context(), connect.NewRequest(&mtmv1.ClaimThreadRequest{ThreadId: rq.R.PathValue("tid")}))
	if f, ok := FormErrorsFrom(err); ok {
		return c.showThread(rq, http.StatusConflict, f, "", "")
	}
	if err != nil {
		return err
	}
	return c.threadDone(rq, "claimed")
}

func (c *Console) replyThread(rq *Request) error {
	body := rq.R.PostFormValue("body")
	_, err := rq.API.Messaging.SendMessage(rq.Context(), connect.NewRequest(&mtmv1.SendMessageRequest{
		ThreadId: rq.R.PathValue("tid"), ClientMessageId: rq.R.PostFormValue("client_message_id"), Body: body,
	}))
	if f, ok := FormErrorsFrom(err); ok {
		return c.showThread(rq, http.StatusUnprocessableEntity, f, body, "")
	}
	if err != nil {
		return err
	}
	return c.threadDone(rq, "sent")
}

func (c *Console) closeThread(rq *Request) error {
	_, err := rq.API.Messaging.CloseThread(rq.Context(), connect.NewRequest(&mtmv1.CloseThreadRequest{ThreadId: rq.R.PathValue("tid")}))
	if f, ok := FormErrorsFrom(err); ok {
		return c.showThread(rq, http.StatusConflict, f, "", "")
	}
	if err != nil {
		return err
	}
	return c.threadDone(rq, "closed")
}

package console

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Reviews: document a CMR or TMR (delivery method, coded problems,
// interventions and referrals with outcomes, a follow-up), record the
// written summary's delivery and later outcomes, and download the CMS PDF
// or the FHIR Bundle. Downloads are POSTs (no document is fetched by a
// URL that history or a proxy keeps), answered as attachments never
// stored.

// reviewData is what review.html shows.
type reviewData struct {
	Head            patientHead
	Patient         *mtmv1.Patient
	PatientPath     string
	Reviews         []*mtmv1.Review
	LastCmr         string
	NextCmrDue      string
	Recommendations int32
	Resolved        int32
	Today           string
}

var reviewNotices = map[string]string{
	"review-recorded":   "Review recorded.",
	"summary-delivered": "Delivery of the written summary recorded.",
	"outcome-saved":     "Outcome saved.",
}

// maxFormRows bounds the problem and intervention rows read from a form
// (the contract allows 50 of each).
const maxFormRows = 50

// serveReviews shows the patient's reviews and the form to document one.
func serveReviews(rq *Request) error {
	return showReviews(rq, http.StatusOK, nil)
}

func showReviews(rq *Request, status int, fe *FormErrors) error {
	id := rq.R.PathValue("patient")
	rec, err := rq.API.Care.GetPatientRecord(rq.Context(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: id}))
	if err != nil {
		return err
	}
	list, err := rq.API.Care.ListReviews(rq.Context(), connect.NewRequest(&mtmv1.ListReviewsRequest{PatientId: id}))
	if err != nil {
		return err
	}
	pt := rec.Msg.GetPatient()
	d := reviewData{
		Head: patientHead{Patient: pt, Path: patientPath(id), Current: "reviews"}, Patient: pt, PatientPath: patientPath(id),
		Reviews: list.Msg.GetReviews(), LastCmr: list.Msg.GetLastCmrOn(), NextCmrDue: list.Msg.GetNextCmrDueOn(),
		Recommendations: list.Msg.GetRecommendationsToPrescriber(), Resolved: list.Msg.GetRecommendationsResolved(),
		Today: rq.today(pt.GetTimeZone()),
	}
	v := View{Title: "Reviews: " + pt.GetGivenName() + " " + pt.GetFamilyName(), Nav: "patients", Data: d, Form: fe}
	if fe == nil {
		v.Flash = reviewNotices[rq.R.URL.Query().Get("done")]
	}
	return rq.Render(status, "review.html", v)
}

// reviewRequest reads the review form: the rows with a description, in
// order.
func reviewRequest(r *http.Request, patientID string) *mtmv1.RecordReviewRequest {
	val := func(name string) string { return trim(r.PostFormValue(name)) }
	req := &mtmv1.RecordReviewRequest{
		PatientId:           patientID,
		Kind:                mtmv1.ReviewKind(mtmv1.ReviewKind_value[val("kind")]),
		DeliveryMethod:      mtmv1.DeliveryMethod(mtmv1.DeliveryMethod_value[val("delivery_method")]),
		ReviewedOn:          val("reviewed_on"),
		CognitiveImpairment: val("cognitive_impairment") == "yes",
	}
	at := func(name string, i int) string {
		if s := r.PostForm[name]; i < len(s) {
			return trim(s[i])
		}
		return ""
	}
	for i := 0; i < len(r.PostForm["problem_description"]) && i < maxFormRows; i++ {
		d := at("problem_description", i)
		if d == "" {
			continue
		}
		p := &mtmv1.CodedProblem{Description: d, Category: mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_OTHER}
		if c := at("problem_category", i); c != "" {
			p.Category = mtmv1.DrugTherapyProblemCategory(mtmv1.DrugTherapyProblemCategory_value[c])
		}
		req.CodedProblems = append(req.CodedProblems, p)
	}
	for i := 0; i < len(r.PostForm["intervention_description"]) && i < maxFormRows; i++ {
		d := at("intervention_description", i)
		if d == "" {
			continue
		}
		in := &mtmv1.Intervention{
			Kind:        mtmv1.InterventionKind(mtmv1.InterventionKind_value[at("intervention_kind", i)]),
			Description: d,
			ReferredTo:  at("intervention_referred_to", i),
			Action:      mtmv1.InterventionAction(mtmv1.InterventionAction_value[at("intervention_action", i)]),
			OutcomeCode: mtmv1.InterventionOutcomeCode(mtmv1.InterventionOutcomeCode_value[at("intervention_outcome", i)]),
		}
		if in.Kind == mtmv1.InterventionKind_INTERVENTION_KIND_UNSPECIFIED {
			in.Kind = mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION
		}
		if in.Kind == mtmv1.InterventionKind_INTERVENTION_KIND_REFERRAL {
			in.Action = mtmv1.InterventionAction_INTERVENTION_ACTION_UNSPECIFIED
		}
		req.InterventionDetails = append(req.InterventionDetails, in)
	}
	return req
}

// recordReview documents a review; a follow-up date first schedules a
// follow-up (9:00 in the patient's time zone) that the review links.
func recordReview(rq *Request) error {
	id := rq.R.PathValue("patient")
	req := reviewRequest(rq.R, id)
	if on := rq.form("follow_up_on"); on != "" {
		due, err := followUpTime(rq, id, on)
		if err != nil {
			return reviewDone(rq, err, "")
		}
		fu, err := rq.API.Care.ScheduleFollowUp(rq.Context(), connect.NewRequest(&mtmv1.ScheduleFollowUpRequest{PatientId: id, DueAt: timestamppb.New(due)}))
		if err != nil {
			return reviewDone(rq, err, "")
		}
		req.FollowUpIds = []string{fu.Msg.GetFollowUpId()}
	}
	_, err := rq.API.Care.RecordReview(rq.Context(), connect.NewRequest(req))
	return reviewDone(rq, err, "review-recorded")
}

// followUpTime is 9:00 on date in the patient's time zone.
func followUpTime(rq *Request, patientID, date string) (time.Time, error) {
	rec, err := rq.API.Care.GetPatientRecord(rq.Context(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: patientID}))
	if err != nil {
		return time.Time{}, err
	}
	loc, err := time.LoadLocation(rec.Msg.GetPatient().GetTimeZone())
	if err != nil {
		loc = time.UTC
	}
	d, err := time.ParseInLocation("2006-01-02", date, loc)
	if err != nil {
		return time.Time{}, &formError{Field: "follow_up_on", Message: "not a date"}
	}
	return time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, loc), nil
}

// reviewDone answers a change on the reviews page.
func reviewDone(rq *Request, err error, done string) error {
	if err == nil {
		return rq.Redirect(patientPath(rq.R.PathValue("patient")) + "/reviews?done=" + done + "#list-h")
	}
	if fe, ok := err.(*formError); ok {
		return showReviews(rq, http.StatusUnprocessableEntity, &FormErrors{Message: "Please correct the marked fields.", Fields: map[string]string{fe.Field: fe.Message}})
	}
	fe, status, ok := refused(err)
	if !ok {
		return err
	}
	return showReviews(rq, status, fe)
}

// formError is a form value the page refuses before calling the API.
type formError struct {
	Field, Message string
}

func (e *formError) Error() string { return e.Field + ": " + e.Message }

func summaryDelivered(rq *Request) error {
	_, err := rq.API.Care.RecordSummaryDelivered(rq.Context(), connect.NewRequest(&mtmv1.RecordSummaryDeliveredRequest{
		PatientId: rq.R.PathValue("patient"), ReviewId: rq.R.PathValue("review"), DeliveredOn: rq.form("delivered_on"),
		Method:    mtmv1.SummaryDeliveryMethod(mtmv1.SummaryDeliveryMethod_value[rq.form("method")]),
		Recipient: mtmv1.SummaryRecipient(mtmv1.SummaryRecipient_value[rq.form("recipient")]),
	}))
	return reviewDone(rq, err, "summary-delivered")
}

func interventionOutcome(rq *Request) error {
	i, err := strconv.Atoi(rq.form("index"))
	if err != nil {
		i = -1 // refused by the API, naming the field
	}
	_, err = rq.API.Care.SetInterventionOutcome(rq.Context(), connect.NewRequest(&mtmv1.SetInterventionOutcomeRequest{
		PatientId: rq.R.PathValue("patient"), ReviewId: rq.R.PathValue("review"), InterventionIndex: int32(min(max(i, -1), 1000)),
		Outcome: rq.form("outcome"), OutcomeCode: mtmv1.InterventionOutcomeCode(mtmv1.InterventionOutcomeCode_value[rq.form("outcome_code")]),
	}))
	return reviewDone(rq, err, "outcome-saved")
}

// exportRecord answers the CMS PDF or the FHIR Bundle as a download that
// no cache keeps (the console answers every page no-store).
func exportRecord(rq *Request) error {
	format, name := mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF, "medication-summary.pdf"
	if rq.form("format") == "fhir" {
		format, name = mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON, "medication-record.fhir.json"
	}
	res, err := rq.API.Care.ExportPatientRecord(rq.Context(), connect.NewRequest(&mtmv1.ExportPatientRecordRequest{PatientId: rq.R.PathValue("patient"), Format: format}))
	if err != nil {
		return reviewDone(rq, err, "")
	}
	h := rq.W.Header()
	h.Set("Content-Type", res.Msg.GetContentType())
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(res.Msg.GetContent())))
	rq.W.WriteHeader(http.StatusOK)
	_, _ = rq.W.Write(res.Msg.GetContent())
	return nil
}

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
// or the FHIR Bundle. Downloads are POSTs (so no document is fetched by a
// URL a proxy or history keeps) answered as attachments that are never
// stored.

// reviewPage is what review.html shows.
type reviewPage struct {
	pageBase
	Patient         *mtmv1.Patient
	PatientPath     string
	Reviews         []*mtmv1.Review
	LastCmr         string
	NextCmrDue      string
	Recommendations int32
	Resolved        int32
	Today           string
	Notice          string
	Problem         string
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
func (pg *pages) serveReviews(w http.ResponseWriter, r *http.Request) {
	pg.showReviews(w, r, http.StatusOK, reviewNotices[r.URL.Query().Get("done")], "")
}

func (pg *pages) showReviews(w http.ResponseWriter, r *http.Request, status int, notice, problem string) {
	id := r.PathValue("patient")
	rec, err := pg.care.GetPatientRecord(r.Context(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: id}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	list, err := pg.care.ListReviews(r.Context(), connect.NewRequest(&mtmv1.ListReviewsRequest{PatientId: id}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pt := rec.Msg.GetPatient()
	pg.render(w, r, status, "review", reviewPage{
		pageBase: pg.base(r, "Reviews: "+pt.GetGivenName()+" "+pt.GetFamilyName()), Patient: pt, PatientPath: patientPath(id),
		Reviews: list.Msg.GetReviews(), LastCmr: list.Msg.GetLastCmrOn(), NextCmrDue: list.Msg.GetNextCmrDueOn(),
		Recommendations: list.Msg.GetRecommendationsToPrescriber(), Resolved: list.Msg.GetRecommendationsResolved(),
		Today: pg.today(pt.GetTimeZone()), Notice: notice, Problem: problem,
	})
}

// reviewRequest reads the review form: the non-empty problem and
// intervention rows, in order.
func reviewRequest(r *http.Request, patientID string) *mtmv1.RecordReviewRequest {
	req := &mtmv1.RecordReviewRequest{
		PatientId:           patientID,
		Kind:                mtmv1.ReviewKind(mtmv1.ReviewKind_value[formText(r, "kind")]),
		DeliveryMethod:      mtmv1.DeliveryMethod(mtmv1.DeliveryMethod_value[formText(r, "delivery_method")]),
		ReviewedOn:          formText(r, "reviewed_on"),
		CognitiveImpairment: r.PostFormValue("cognitive_impairment") == "yes",
	}
	cats, descs := r.PostForm["problem_category"], r.PostForm["problem_description"]
	for i := 0; i < len(descs) && i < maxFormRows; i++ {
		d := trim(descs[i])
		if d == "" {
			continue
		}
		p := &mtmv1.CodedProblem{Description: d, Category: mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_OTHER}
		if i < len(cats) && cats[i] != "" {
			p.Category = mtmv1.DrugTherapyProblemCategory(mtmv1.DrugTherapyProblemCategory_value[cats[i]])
		}
		req.CodedProblems = append(req.CodedProblems, p)
	}
	kinds, actions, ds, refs, outs := r.PostForm["intervention_kind"], r.PostForm["intervention_action"], r.PostForm["intervention_description"], r.PostForm["intervention_referred_to"], r.PostForm["intervention_outcome"]
	at := func(s []string, i int) string {
		if i < len(s) {
			return trim(s[i])
		}
		return ""
	}
	for i := 0; i < len(ds) && i < maxFormRows; i++ {
		d := at(ds, i)
		if d == "" {
			continue
		}
		in := &mtmv1.Intervention{
			Kind:        mtmv1.InterventionKind(mtmv1.InterventionKind_value[at(kinds, i)]),
			Description: d,
			ReferredTo:  at(refs, i),
			Action:      mtmv1.InterventionAction(mtmv1.InterventionAction_value[at(actions, i)]),
			OutcomeCode: mtmv1.InterventionOutcomeCode(mtmv1.InterventionOutcomeCode_value[at(outs, i)]),
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

// recordReview documents a review; a follow-up date schedules a follow-up
// (9:00 in the patient's time zone) linked to it.
func (pg *pages) recordReview(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("patient")
	req := reviewRequest(r, id)
	if on := formText(r, "follow_up_on"); on != "" {
		due, err := pg.followUpTime(r, id, on)
		if err != nil {
			pg.showReviews(w, r, http.StatusUnprocessableEntity, "", "Not saved: the follow-up date is not a date.")
			return
		}
		fu, err := pg.care.ScheduleFollowUp(r.Context(), connect.NewRequest(&mtmv1.ScheduleFollowUpRequest{PatientId: id, DueAt: timestamppb.New(due)}))
		if err != nil {
			pg.reviewDone(w, r, err, "")
			return
		}
		req.FollowUpIds = []string{fu.Msg.GetFollowUpId()}
	}
	_, err := pg.care.RecordReview(r.Context(), connect.NewRequest(req))
	pg.reviewDone(w, r, err, "review-recorded")
}

// followUpTime is 9:00 on the given date in the patient's time zone.
func (pg *pages) followUpTime(r *http.Request, patientID, date string) (time.Time, error) {
	loc := time.UTC
	if rec, err := pg.care.GetPatientRecord(r.Context(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: patientID})); err == nil {
		if l, err := time.LoadLocation(rec.Msg.GetPatient().GetTimeZone()); err == nil {
			loc = l
		}
	}
	d, err := time.ParseInLocation("2006-01-02", date, loc)
	if err != nil {
		return time.Time{}, err
	}
	return d.Add(9 * time.Hour), nil
}

func (pg *pages) reviewDone(w http.ResponseWriter, r *http.Request, err error, done string) {
	if err == nil {
		http.Redirect(w, r, patientPath(r.PathValue("patient"))+"/reviews?done="+done+"#list-h", http.StatusSeeOther)
		return
	}
	pg.showReviews(w, r, statusOf(err), "", problemText(err))
}

func (pg *pages) summaryDelivered(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.RecordSummaryDelivered(r.Context(), connect.NewRequest(&mtmv1.RecordSummaryDeliveredRequest{
		PatientId: r.PathValue("patient"), ReviewId: r.PathValue("review"), DeliveredOn: formText(r, "delivered_on"),
		Method:    mtmv1.SummaryDeliveryMethod(mtmv1.SummaryDeliveryMethod_value[formText(r, "method")]),
		Recipient: mtmv1.SummaryRecipient(mtmv1.SummaryRecipient_value[formText(r, "recipient")]),
	}))
	pg.reviewDone(w, r, err, "summary-delivered")
}

func (pg *pages) interventionOutcome(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(formText(r, "index"))
	if err != nil {
		i = -1
	}
	_, err = pg.care.SetInterventionOutcome(r.Context(), connect.NewRequest(&mtmv1.SetInterventionOutcomeRequest{
		PatientId: r.PathValue("patient"), ReviewId: r.PathValue("review"), InterventionIndex: int32(min(max(i, -1), 1000)),
		Outcome: formText(r, "outcome"), OutcomeCode: mtmv1.InterventionOutcomeCode(mtmv1.InterventionOutcomeCode_value[formText(r, "outcome_code")]),
	}))
	pg.reviewDone(w, r, err, "outcome-saved")
}

// exportRecord answers the CMS PDF or the FHIR Bundle as a download that
// no cache keeps.
func (pg *pages) exportRecord(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("patient")
	format, name := mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF, "medication-summary.pdf"
	if r.PostFormValue("format") == "fhir" {
		format, name = mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON, "medication-record.fhir.json"
	}
	res, err := pg.care.ExportPatientRecord(r.Context(), connect.NewRequest(&mtmv1.ExportPatientRecordRequest{PatientId: id, Format: format}))
	if err != nil {
		pg.reviewDone(w, r, err, "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", res.Msg.GetContentType())
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(res.Msg.GetContent())))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(res.Msg.GetContent())
}

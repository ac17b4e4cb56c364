package api

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/export/cmspdf"
	"github.com/mtmapp/mtm/backend/export/fhir"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Clinical documentation: reviews, self-reported medicines, adherence and
// the record exports.
//
// Scopes on the patient side: reporting a self-started medicine is a write
// (it adds a report for the pharmacist to review), so a caregiver needs the
// message scope, the one that lets them speak to the pharmacy for the
// patient; reading the list does not allow it. Reading adherence needs
// view_medicines; the exports hold the list and the plan, so a caregiver needs both
// view_medicines and view_plan; the FHIR export carries the conversations
// (Communication) only for callers who hold the message scope.

const (
	// maxPendingSelfReports bounds how many unreviewed self-reports a record
	// holds, so that the patient side cannot grow a record without limit.
	maxPendingSelfReports = 50
	// maxReviews bounds the reviews kept on a record (decades of quarterly
	// TMRs and annual CMRs).
	maxReviews = 400
	// defaultListSize is the page size of pharmacy-wide lists when 0.
	defaultListSize = 100
)

var reviewKinds = map[mtmv1.ReviewKind]string{
	mtmv1.ReviewKind_REVIEW_KIND_CMR: clinical.ReviewCMR,
	mtmv1.ReviewKind_REVIEW_KIND_TMR: clinical.ReviewTMR,
}

var deliveryMethods = map[mtmv1.DeliveryMethod]string{
	mtmv1.DeliveryMethod_DELIVERY_METHOD_FACE_TO_FACE: "face_to_face",
	mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEPHONE:    "telephone",
	mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEHEALTH:   "telehealth",
	mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER:        "other",
}

var problemCategories = map[mtmv1.DrugTherapyProblemCategory]string{
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_UNNECESSARY_THERAPY:      store.DTPUnnecessaryTherapy,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_NEEDS_ADDITIONAL_THERAPY: store.DTPNeedsAdditionalTherapy,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_INEFFECTIVE_DRUG:         store.DTPIneffectiveDrug,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_DOSAGE_TOO_LOW:           store.DTPDosageTooLow,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_ADVERSE_DRUG_REACTION:    store.DTPAdverseDrugReaction,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_DOSAGE_TOO_HIGH:          store.DTPDosageTooHigh,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_ADHERENCE:                store.DTPAdherence,
	mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_OTHER:                    store.DTPOther,
}

var interventionActions = map[mtmv1.InterventionAction]string{
	mtmv1.InterventionAction_INTERVENTION_ACTION_COUNSELLED_PATIENT:           "counselled_patient",
	mtmv1.InterventionAction_INTERVENTION_ACTION_RECOMMENDATION_TO_PRESCRIBER: "recommendation_to_prescriber",
	mtmv1.InterventionAction_INTERVENTION_ACTION_CHANGE_MADE_BY_PHARMACIST:    "change_made_by_pharmacist",
}

var outcomeCodes = map[mtmv1.InterventionOutcomeCode]string{
	mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_ACCEPTED_IMPLEMENTED:           "accepted_implemented",
	mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_ACCEPTED_PARTIALLY_IMPLEMENTED: "accepted_partially_implemented",
	mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_ACCEPTED_NOT_IMPLEMENTED:       "accepted_not_implemented",
	mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_NOT_ACCEPTED:                   "not_accepted",
	mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_NO_RESPONSE:                    "no_response",
}

var summaryMethods = map[mtmv1.SummaryDeliveryMethod]string{
	mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_IN_PERSON:         "in_person",
	mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_MAIL:              "mail",
	mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_FAX:               "fax",
	mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_EMAIL:             "email",
	mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_SECURE_ELECTRONIC: "secure_electronic",
}

var summaryRecipients = map[mtmv1.SummaryRecipient]string{
	mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_PATIENT:          "patient",
	mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_CAREGIVER:        "caregiver",
	mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_PRESCRIBER:       "prescriber",
	mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_OTHER_AUTHORIZED: "other_authorized",
}

var interventionKinds = map[mtmv1.InterventionKind]string{
	mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION: "intervention",
	mtmv1.InterventionKind_INTERVENTION_KIND_REFERRAL:     "referral",
}

var selfMedicationKinds = map[mtmv1.SelfMedicationKind]string{
	mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC:        "otc",
	mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_HERBAL:     "herbal",
	mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_SUPPLEMENT: "supplement",
}

// Self-report states as the store keeps them.
const (
	selfReportPending  = "pending"
	selfReportAccepted = "accepted"
	selfReportDeclined = "declined"
)

var selfReportStatuses = map[string]mtmv1.SelfReportStatus{
	selfReportPending:  mtmv1.SelfReportStatus_SELF_REPORT_STATUS_PENDING_REVIEW,
	selfReportAccepted: mtmv1.SelfReportStatus_SELF_REPORT_STATUS_ACCEPTED,
	selfReportDeclined: mtmv1.SelfReportStatus_SELF_REPORT_STATUS_DECLINED,
}

// invert returns the reverse of a one-to-one map.
func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// ReportSelfMedication implements mtm.v1.PatientService.ReportSelfMedication.
// The report stays "pending review" and out of the PML's medications until
// a pharmacist resolves it.
func (s *PatientService) ReportSelfMedication(ctx context.Context, req *connect.Request[mtmv1.ReportSelfMedicationRequest]) (*connect.Response[mtmv1.ReportSelfMedicationResponse], error) {
	c, m := s.cfg, req.Msg
	started, err := c.optionalDate("started_on", m.GetStartedOn())
	if err != nil {
		return nil, err
	}
	name := strings.TrimSpace(m.GetName())
	if name == "" {
		return nil, invalidField("name", "must not be blank")
	}
	id, err := auth.NewID("sr")
	if err != nil {
		return nil, err
	}
	_, err = c.updateForPatientSide(ctx, m.GetPatientId(), store.ScopeMessage, func(p auth.Principal, pt *store.Patient) error {
		pending := 0
		for _, r := range pt.SelfReports {
			if r.Status == selfReportPending {
				pending++
			}
		}
		if pending >= maxPendingSelfReports {
			return connect.NewError(connect.CodeResourceExhausted, errors.New("too many reports are waiting for the pharmacist; try again after they are reviewed"))
		}
		pt.SelfReports = append(pt.SelfReports, store.SelfReport{
			ID: id, Kind: selfMedicationKinds[m.GetKind()], Name: name, HowIUseIt: strings.TrimSpace(m.GetHowIUseIt()),
			StartedOn: started, ReportedBy: p.Subject, ReportedAt: c.Now(), Status: selfReportPending,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ReportSelfMedicationResponse{ReportId: id}), nil
}

// GetAdherence implements mtm.v1.PatientService.GetAdherence.
func (s *PatientService) GetAdherence(ctx context.Context, req *connect.Request[mtmv1.GetAdherenceRequest]) (*connect.Response[mtmv1.GetAdherenceResponse], error) {
	_, pt, err := s.cfg.loadForPatientSide(ctx, req.Msg.GetPatientId(), store.ScopeViewMedicines)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.GetAdherenceResponse{Medications: adherence(pt, today(pt, s.cfg.Now()), req.Msg.GetWindowDays())}), nil
}

// ExportRecord implements mtm.v1.PatientService.ExportRecord: the record as
// a FHIR R4 Bundle (JSON) or the CMS standardized-format PDF.
func (s *PatientService) ExportRecord(ctx context.Context, req *connect.Request[mtmv1.ExportRecordRequest]) (*connect.Response[mtmv1.ExportRecordResponse], error) {
	c, m := s.cfg, req.Msg
	p, pt, err := c.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeViewMedicines)
	if err != nil {
		return nil, err
	}
	if !mayActFor(p, pt, store.ScopeViewPlan, c.Now()) { // the export holds the plan too
		return nil, errPatientNotFound
	}
	// Conversations only for who may read them.
	contentType, doc, err := c.export(ctx, pt, m.GetFormat(), mayActFor(p, pt, store.ScopeMessage, c.Now()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ExportRecordResponse{ContentType: contentType, Content: doc}), nil
}

// ExportPatientRecord implements mtm.v1.CareService.ExportPatientRecord:
// the same documents as the patient's ExportRecord, for the pharmacists of
// the patient's pharmacy (who read the conversations anyway).
func (s *CareService) ExportPatientRecord(ctx context.Context, req *connect.Request[mtmv1.ExportPatientRecordRequest]) (*connect.Response[mtmv1.ExportPatientRecordResponse], error) {
	_, pt, err := s.cfg.loadForCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	contentType, doc, err := s.cfg.export(ctx, pt, req.Msg.GetFormat(), true)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ExportPatientRecordResponse{ContentType: contentType, Content: doc}), nil
}

// export renders a patient's record as a FHIR Bundle or the CMS PDF; the
// FHIR Bundle carries the conversations when withMessages.
func (c Config) export(ctx context.Context, pt store.Patient, format mtmv1.ExportFormat, withMessages bool) (contentType string, doc []byte, err error) {
	now := c.Now()
	pharmacy, err := c.Store.GetPharmacy(ctx, pt.PharmacyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", nil, err
	}
	switch format {
	case mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON:
		in := fhir.Input{Patient: pt, Pharmacy: pharmacy, PharmacyName: pharmacy.Name, Now: now}
		if in.Pharmacists, err = c.exportPharmacists(ctx, pt); err != nil {
			return "", nil, err
		}
		if withMessages {
			if in.Messages, err = c.exportMessages(ctx, pt.ID); err != nil {
				return "", nil, err
			}
		}
		doc, err := fhir.Bundle(in)
		return fhir.ContentType, doc, err
	case mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF:
		in := cmspdf.Input{Patient: pt, Pharmacy: pharmacy, Prepared: today(pt, now), Language: pt.PreferredLanguage}
		if r, ok := lastReview(pt.Reviews, clinical.ReviewCMR); ok {
			in.ReviewedOn = r.ReviewedOn
			if acct, err := c.Store.GetAccount(ctx, r.PharmacistID); err == nil {
				in.PharmacistName = acct.DisplayName
			}
		}
		doc, err := cmspdf.Render(in)
		return cmspdf.ContentType, doc, err
	}
	return "", nil, invalidField("format", "unknown export format")
}

// RecordSummaryDelivered implements mtm.v1.CareService.RecordSummaryDelivered.
func (s *CareService) RecordSummaryDelivered(ctx context.Context, req *connect.Request[mtmv1.RecordSummaryDeliveredRequest]) (*connect.Response[mtmv1.RecordSummaryDeliveredResponse], error) {
	m := req.Msg
	delivered, err := store.ParseDate(m.GetDeliveredOn())
	if err != nil {
		return nil, invalidField("delivered_on", "not a date (YYYY-MM-DD)")
	}
	var (
		review store.Review
		links  []string
	)
	_, err = s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		i := slices.IndexFunc(pt.Reviews, func(r store.Review) bool { return r.ID == m.GetReviewId() })
		if i < 0 {
			return notFound("review")
		}
		r := &pt.Reviews[i]
		if delivered.Time().Before(r.ReviewedOn.Time()) {
			return invalidField("delivered_on", "before the review ("+r.ReviewedOn.String()+")")
		}
		if delivered.Time().After(today(*pt, s.cfg.Now()).Time()) {
			return invalidField("delivered_on", "in the future")
		}
		r.SummaryDeliveredOn, r.SummaryMethod, r.SummaryRecipient = delivered, summaryMethods[m.GetMethod()], summaryRecipients[m.GetRecipient()]
		review, links = *r, followUpsOf(*pt, r.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RecordSummaryDeliveredResponse{Review: reviewToProto(review, links)}), nil
}

// Bounds of the conversations an export carries.
const (
	exportThreads           = 200
	exportMessagesPerThread = 1000
)

// exportMessages returns the messages of the patient's newest threads, for
// the FHIR export's Communication resources.
func (c Config) exportMessages(ctx context.Context, patientID string) ([]fhir.Message, error) {
	threads, err := c.Store.ListPatientThreads(ctx, patientID, "", exportThreads)
	if err != nil {
		return nil, err
	}
	var out []fhir.Message
	for _, th := range threads {
		msgs, err := c.Store.ListMessages(ctx, th.ID, 0, exportMessagesPerThread)
		if err != nil {
			return nil, err
		}
		for _, msg := range msgs {
			out = append(out, fhir.Message{
				ID: th.ID + "-" + strconv.FormatInt(msg.Seq, 10), ThreadID: th.ID, Subject: th.Subject,
				FromPatientSide: !msg.AuthorRole.IsStaff(), Body: msg.Body, SentAt: msg.SentAt,
			})
		}
	}
	return out, nil
}

// exportMaxPharmacists bounds the staff accounts one export looks up.
const exportMaxPharmacists = 50

// exportPharmacists returns the staff accounts of the patient's pharmacy
// that the record names (the pharmacist of each review, the last editor of
// each PML row), for the FHIR export's Practitioner resources. An account
// that is gone, is not staff or works for another pharmacy is left out.
func (c Config) exportPharmacists(ctx context.Context, pt store.Patient) ([]fhir.Pharmacist, error) {
	var ids []string
	seen := map[string]bool{}
	note := func(id string) {
		if id != "" && !seen[id] && len(ids) < exportMaxPharmacists {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, r := range pt.Reviews {
		note(r.PharmacistID)
	}
	for _, m := range pt.Medications {
		note(m.UpdatedBy)
	}
	var out []fhir.Pharmacist
	for _, id := range ids {
		acct, err := c.Store.GetAccount(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if acct.Role.IsStaff() && acct.PharmacyID == pt.PharmacyID {
			out = append(out, fhir.Pharmacist{ID: acct.ID, Name: acct.DisplayName, NPI: acct.NPI})
		}
	}
	return out, nil
}

// lastReview returns the latest review of a kind.
func lastReview(reviews []store.Review, kind string) (store.Review, bool) {
	var last store.Review
	found := false
	for _, r := range reviews {
		if r.Kind == kind && (!found || last.ReviewedOn.Before(r.ReviewedOn)) {
			last, found = r, true
		}
	}
	return last, found
}

// adherence returns the patient's PQA Proportion of Days Covered measures
// (clinical.Measures) over the measurement year to day, or over the window
// of windowDays ending on day when windowDays > 0, with the record's
// hospice, ESRD and inpatient stays. The wire message has one entry per
// medicine, so a class measure (PDC-DR, PDC-RASA, PDC-STA) appears once for
// each medicine it pooled, all with the class's figure; a medicine outside
// the classes carries its own. A measure that did not score the patient
// (fewer than two fill dates, less than 91 days of treatment, an
// exclusion) is there with its status, so that a pharmacist sees why the
// patient is on no list.
func adherence(pt store.Patient, day store.Date, windowDays int32) []*mtmv1.MedicationAdherence {
	period := clinical.MeasurementYear(day)
	if windowDays > 0 {
		period = clinical.Window(day, int(windowDays))
	}
	var out []*mtmv1.MedicationAdherence
	for _, r := range clinical.Measures(clinical.InputOf(pt, period)) {
		for _, id := range r.MedicationIDs {
			out = append(out, adherenceToProto(id, r, period))
		}
	}
	return out
}

var measureToProto = map[clinical.Measure]mtmv1.AdherenceMeasure{
	clinical.MeasureDiabetes:    mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_DR,
	clinical.MeasureRASA:        mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_RASA,
	clinical.MeasureStatins:     mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_STA,
	clinical.MeasurePerMedicine: mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PER_MEDICINE,
}

var adherenceStatusToProto = map[clinical.Status]mtmv1.AdherenceStatus{
	clinical.StatusScored:         mtmv1.AdherenceStatus_ADHERENCE_STATUS_SCORED,
	clinical.StatusFewFills:       mtmv1.AdherenceStatus_ADHERENCE_STATUS_FEW_FILLS,
	clinical.StatusShortTreatment: mtmv1.AdherenceStatus_ADHERENCE_STATUS_SHORT_TREATMENT,
	clinical.StatusHospice:        mtmv1.AdherenceStatus_ADHERENCE_STATUS_EXCLUDED_HOSPICE,
	clinical.StatusESRD:           mtmv1.AdherenceStatus_ADHERENCE_STATUS_EXCLUDED_ESRD,
	clinical.StatusInsulin:        mtmv1.AdherenceStatus_ADHERENCE_STATUS_EXCLUDED_INSULIN,
	clinical.StatusSacubitril:     mtmv1.AdherenceStatus_ADHERENCE_STATUS_EXCLUDED_SACUBITRIL,
}

// adherenceToProto is one medicine's entry of measure r over period.
func adherenceToProto(medicationID string, r clinical.Result, period clinical.Period) *mtmv1.MedicationAdherence {
	out := &mtmv1.MedicationAdherence{
		MedicationId: medicationID, Measure: measureToProto[r.Measure], Status: adherenceStatusToProto[r.Status],
		PeriodStart: period.From.String(), PeriodEnd: period.Through.String(),
	}
	if !r.Scored() {
		out.StatusReason = string(r.Status)
		return out
	}
	a := r.Adherence
	out.ProportionOfDaysCovered, out.BelowThreshold = a.PDC(), a.BelowThreshold()
	out.TreatmentStart, out.TreatmentEnd = a.From.String(), a.Through.String()
	out.DaysInPeriod, out.DaysCovered = int32(a.DaysInPeriod), int32(a.DaysCovered)
	return out
}

// isActive reports whether the PML row id is still taken.
func isActive(pt store.Patient, id string) bool {
	return slices.ContainsFunc(pt.Medications, func(m store.Medication) bool { return m.ID == id && m.Active() })
}

// enrolledOn is the patient's enrollment date, in their time zone.
func enrolledOn(pt store.Patient) store.Date { return today(pt, pt.CreatedAt) }

// RecordReview implements mtm.v1.CareService.RecordReview. Follow-ups named
// in the request are linked to the new review (FollowUp.ReviewID); one
// already linked to another review is refused.
func (s *CareService) RecordReview(ctx context.Context, req *connect.Request[mtmv1.RecordReviewRequest]) (*connect.Response[mtmv1.RecordReviewResponse], error) {
	c, m := s.cfg, req.Msg
	reviewed, err := c.pastOrToday("reviewed_on", m.GetReviewedOn())
	if err != nil {
		return nil, err
	}
	var interventions []store.Intervention
	for _, text := range m.GetInterventions() {
		interventions = append(interventions, store.Intervention{Kind: "intervention", Description: strings.TrimSpace(text)})
	}
	for i, d := range m.GetInterventionDetails() {
		iv := store.Intervention{Kind: interventionKinds[d.GetKind()], Description: strings.TrimSpace(d.GetDescription()),
			ReferredTo: strings.TrimSpace(d.GetReferredTo()), Outcome: strings.TrimSpace(d.GetOutcome()),
			Action: interventionActions[d.GetAction()], OutcomeCode: outcomeCodes[d.GetOutcomeCode()]}
		if iv.Kind == "referral" && iv.Action != "" {
			return nil, invalidField("intervention_details["+strconv.Itoa(i)+"].action", "a referral has no action")
		}
		if iv.Kind == "referral" && iv.ReferredTo == "" {
			return nil, invalidField("intervention_details["+strconv.Itoa(i)+"].referred_to", "a referral names who the patient was referred to")
		}
		interventions = append(interventions, iv)
	}
	if len(interventions) > 100 {
		return nil, invalidField("intervention_details", "at most 100 interventions in all")
	}
	var problems []string
	for _, p := range m.GetProblemsFound() {
		problems = append(problems, strings.TrimSpace(p))
	}
	var coded []store.CodedProblem
	for _, p := range m.GetCodedProblems() {
		coded = append(coded, store.CodedProblem{Category: problemCategories[p.GetCategory()], Description: strings.TrimSpace(p.GetDescription())})
	}
	id, err := auth.NewID("rv")
	if err != nil {
		return nil, err
	}
	var (
		review store.Review
		due    store.Date
	)
	_, err = c.updateForCare(ctx, m.GetPatientId(), func(p auth.Principal, pt *store.Patient) error {
		if len(pt.Reviews) >= maxReviews {
			return connect.NewError(connect.CodeResourceExhausted, errors.New("the record holds the most reviews it can"))
		}
		review = store.Review{ID: id, Kind: reviewKinds[m.GetKind()], DeliveryMethod: deliveryMethods[m.GetDeliveryMethod()], ReviewedOn: reviewed,
			PharmacistID: p.Subject, Problems: problems, Interventions: interventions, CreatedAt: c.Now(),
			CodedProblems: coded, CognitiveImpairment: m.GetCognitiveImpairment()}
		for _, fu := range m.GetFollowUpIds() {
			i := slices.IndexFunc(pt.FollowUps, func(f store.FollowUp) bool { return f.ID == fu })
			if i < 0 {
				return notFound("follow-up")
			}
			if other := pt.FollowUps[i].ReviewID; other != "" && other != id {
				return connect.NewError(connect.CodeFailedPrecondition, errors.New("follow-up "+fu+" already belongs to another review"))
			}
			pt.FollowUps[i].ReviewID = id
		}
		pt.Reviews = append(pt.Reviews, review)
		due = clinical.NextCMRDue(pt.Reviews, enrolledOn(*pt))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RecordReviewResponse{ReviewId: id, NextCmrDueOn: due.String(), Review: reviewToProto(review, m.GetFollowUpIds())}), nil
}

// ListReviews implements mtm.v1.CareService.ListReviews.
func (s *CareService) ListReviews(ctx context.Context, req *connect.Request[mtmv1.ListReviewsRequest]) (*connect.Response[mtmv1.ListReviewsResponse], error) {
	_, pt, err := s.cfg.loadForCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	reviews := slices.Clone(pt.Reviews)
	slices.SortStableFunc(reviews, func(a, b store.Review) int {
		return cmp.Or(b.ReviewedOn.Time().Compare(a.ReviewedOn.Time()), b.CreatedAt.Compare(a.CreatedAt))
	})
	out := &mtmv1.ListReviewsResponse{NextCmrDueOn: clinical.NextCMRDue(pt.Reviews, enrolledOn(pt)).String()}
	if last, ok := clinical.LastCMR(pt.Reviews); ok {
		out.LastCmrOn = last.String()
	}
	for _, r := range reviews {
		out.Reviews = append(out.Reviews, reviewToProto(r, followUpsOf(pt, r.ID)))
		for _, iv := range r.Interventions {
			if iv.Action != "recommendation_to_prescriber" {
				continue
			}
			out.RecommendationsToPrescriber++
			if iv.OutcomeCode == "accepted_implemented" || iv.OutcomeCode == "accepted_partially_implemented" {
				out.RecommendationsResolved++
			}
		}
	}
	return connect.NewResponse(out), nil
}

// SetInterventionOutcome implements mtm.v1.CareService.SetInterventionOutcome.
func (s *CareService) SetInterventionOutcome(ctx context.Context, req *connect.Request[mtmv1.SetInterventionOutcomeRequest]) (*connect.Response[mtmv1.SetInterventionOutcomeResponse], error) {
	m := req.Msg
	var (
		review store.Review
		links  []string
	)
	_, err := s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		i := slices.IndexFunc(pt.Reviews, func(r store.Review) bool { return r.ID == m.GetReviewId() })
		if i < 0 {
			return notFound("review")
		}
		r := &pt.Reviews[i]
		k := int(m.GetInterventionIndex())
		if k >= len(r.Interventions) {
			return invalidField("intervention_index", "the review has no intervention at this position")
		}
		r.Interventions = slices.Clone(r.Interventions)
		r.Interventions[k].Outcome = strings.TrimSpace(m.GetOutcome())
		if code := m.GetOutcomeCode(); code != mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_UNSPECIFIED {
			r.Interventions[k].OutcomeCode = outcomeCodes[code]
		}
		review, links = *r, followUpsOf(*pt, r.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SetInterventionOutcomeResponse{Review: reviewToProto(review, links)}), nil
}

// ListSelfReportedMedications implements
// mtm.v1.CareService.ListSelfReportedMedications.
func (s *CareService) ListSelfReportedMedications(ctx context.Context, req *connect.Request[mtmv1.ListSelfReportedMedicationsRequest]) (*connect.Response[mtmv1.ListSelfReportedMedicationsResponse], error) {
	_, pt, err := s.cfg.loadForCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	reports := slices.Clone(pt.SelfReports)
	slices.SortStableFunc(reports, func(a, b store.SelfReport) int {
		ap, bp := a.Status == selfReportPending, b.Status == selfReportPending
		switch {
		case ap && !bp:
			return -1
		case bp && !ap:
			return 1
		}
		return a.ReportedAt.Compare(b.ReportedAt)
	})
	out := &mtmv1.ListSelfReportedMedicationsResponse{}
	for _, r := range reports {
		if r.Status == selfReportPending || req.Msg.GetIncludeResolved() {
			out.Reports = append(out.Reports, selfReportToProto(r))
		}
	}
	return connect.NewResponse(out), nil
}

// ResolveSelfReportedMedication implements
// mtm.v1.CareService.ResolveSelfReportedMedication. Accepting adds a PML row
// (the pharmacist's fields, or the reported ones) and links it; declining
// needs a reason. A report is resolved once: a second decision is refused
// with failed_precondition.
func (s *CareService) ResolveSelfReportedMedication(ctx context.Context, req *connect.Request[mtmv1.ResolveSelfReportedMedicationRequest]) (*connect.Response[mtmv1.ResolveSelfReportedMedicationResponse], error) {
	c, m := s.cfg, req.Msg
	accept := m.GetDecision() == mtmv1.SelfReportDecision_SELF_REPORT_DECISION_ACCEPT
	reason := strings.TrimSpace(m.GetDeclineReason())
	var fields *store.Medication
	switch {
	case accept && m.GetMedication() != nil:
		f, err := c.medicationFields(m.GetMedication())
		if err != nil {
			return nil, err
		}
		fields = &f
	case accept && reason != "":
		return nil, invalidField("decline_reason", "only a declined report has a decline reason")
	case !accept && reason == "":
		return nil, invalidField("decline_reason", "say why the report is declined")
	case !accept && m.GetMedication() != nil:
		return nil, invalidField("medication", "only an accepted report becomes a PML row")
	}
	medID, err := auth.NewID("md")
	if err != nil {
		return nil, err
	}
	var (
		report store.SelfReport
		med    *store.Medication
	)
	_, err = c.updateForCare(ctx, m.GetPatientId(), func(p auth.Principal, pt *store.Patient) error {
		report, med = store.SelfReport{}, nil // fn may run more than once
		i := slices.IndexFunc(pt.SelfReports, func(r store.SelfReport) bool { return r.ID == m.GetReportId() })
		if i < 0 {
			return notFound("self-reported medication")
		}
		r := &pt.SelfReports[i]
		if r.Status != selfReportPending {
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("the report was already "+r.Status))
		}
		now := c.Now()
		r.ResolvedBy, r.ResolvedAt = p.Subject, now
		if !accept {
			r.Status, r.DeclineReason = selfReportDeclined, reason
			report = *r
			return nil
		}
		row := store.Medication{Name: r.Name, HowIUseIt: r.HowIUseIt, StartedOn: r.StartedOn}
		if fields != nil {
			row = *fields
		}
		if row.HowIUseIt == "" {
			return invalidField("medication.how_i_use_it", "the report says nothing about how it is used: give the PML row")
		}
		row.ID, row.UpdatedAt, row.UpdatedBy, row.Version = medID, now, p.Subject, 1
		pt.Medications = append(pt.Medications, row)
		r.Status, r.MedicationID = selfReportAccepted, medID
		report, med = *r, &row
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ResolveSelfReportedMedicationResponse{Report: selfReportToProto(report)}
	if med != nil {
		out.Medication = medicationToProto(*med)
	}
	return connect.NewResponse(out), nil
}

// GetPatientAdherence implements mtm.v1.CareService.GetPatientAdherence.
func (s *CareService) GetPatientAdherence(ctx context.Context, req *connect.Request[mtmv1.GetPatientAdherenceRequest]) (*connect.Response[mtmv1.GetPatientAdherenceResponse], error) {
	_, pt, err := s.cfg.loadForCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.GetPatientAdherenceResponse{Medications: adherence(pt, today(pt, s.cfg.Now()), req.Msg.GetWindowDays())}), nil
}

func pageSize(n int32) int {
	if n <= 0 {
		return defaultListSize
	}
	return int(n)
}

// followUpsOf lists the ids of the follow-ups a review set.
func followUpsOf(pt store.Patient, reviewID string) []string {
	var out []string
	for _, f := range pt.FollowUps {
		if f.ReviewID == reviewID {
			out = append(out, f.ID)
		}
	}
	return out
}

var (
	reviewKindToProto         = invert(reviewKinds)
	deliveryMethodToProto     = invert(deliveryMethods)
	interventionKindToProto   = invert(interventionKinds)
	summaryMethodToProto      = invert(summaryMethods)
	problemCategoryToProto    = invert(problemCategories)
	interventionActionToProto = invert(interventionActions)
	outcomeCodeToProto        = invert(outcomeCodes)
	summaryRecipientToProto   = invert(summaryRecipients)
	selfMedicationKindToProto = invert(selfMedicationKinds)
)

func reviewToProto(r store.Review, followUps []string) *mtmv1.Review {
	out := &mtmv1.Review{
		Id: r.ID, Kind: reviewKindToProto[r.Kind], DeliveryMethod: deliveryMethodToProto[r.DeliveryMethod], ReviewedOn: r.ReviewedOn.String(),
		PharmacistId: r.PharmacistID, ProblemsFound: r.Problems, FollowUpIds: followUps, CreatedAt: ts(r.CreatedAt),
		SummaryDeliveryMethod: summaryMethodToProto[r.SummaryMethod], SummaryRecipient: summaryRecipientToProto[r.SummaryRecipient],
	}
	if !r.SummaryDeliveredOn.IsZero() {
		out.SummaryDeliveredOn = r.SummaryDeliveredOn.String()
	}
	if r.Kind == clinical.ReviewCMR {
		out.SummaryDueBy = r.ReviewedOn.AddDays(clinical.CMRSummaryDays).String()
	}
	for _, iv := range r.Interventions {
		out.Interventions = append(out.Interventions, &mtmv1.Intervention{Kind: interventionKindToProto[iv.Kind], Description: iv.Description, ReferredTo: iv.ReferredTo,
			Outcome: iv.Outcome, Action: interventionActionToProto[iv.Action], OutcomeCode: outcomeCodeToProto[iv.OutcomeCode]})
	}
	for _, p := range r.CodedProblems {
		out.CodedProblems = append(out.CodedProblems, &mtmv1.CodedProblem{Category: problemCategoryToProto[p.Category], Description: p.Description})
	}
	out.CognitiveImpairment = r.CognitiveImpairment
	return out
}

func selfReportToProto(r store.SelfReport) *mtmv1.SelfReportedMedication {
	return &mtmv1.SelfReportedMedication{
		Id: r.ID, Kind: selfMedicationKindToProto[r.Kind], Name: r.Name, HowIUseIt: r.HowIUseIt, StartedOn: r.StartedOn.String(),
		ReportedBy: r.ReportedBy, ReportedAt: ts(r.ReportedAt), Status: selfReportStatuses[r.Status], ResolvedBy: r.ResolvedBy,
		ResolvedAt: ts(r.ResolvedAt), DeclineReason: r.DeclineReason, MedicationId: r.MedicationID,
	}
}

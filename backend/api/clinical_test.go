package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// matrixClinicalRecords gives a matrix patient a review with one
// intervention and a pending self-report, and returns their ids.
func matrixClinicalRecords(t *testing.T, e *env, pharmacistToken string, p enrolled) (review, selfReport string) {
	t.Helper()
	ctx := context.Background()
	rv, err := e.careClient(pharmacistToken).RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: p.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR,
		DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEPHONE, ReviewedOn: "2026-03-01", Interventions: []string{"counselled"}}))
	if err != nil {
		t.Fatal(err)
	}
	sr, err := e.patientClient(p.token).ReportSelfMedication(ctx, req(&mtmv1.ReportSelfMedicationRequest{PatientId: p.id,
		Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_SUPPLEMENT, Name: "Vitamin D", HowIUseIt: "1 daily"}))
	if err != nil {
		t.Fatal(err)
	}
	return rv.Msg.GetReviewId(), sr.Msg.GetReportId()
}

// addMed adds a PML row and returns its id.
func addMed(t *testing.T, care interface {
	AddMedication(context.Context, *connect.Request[mtmv1.AddMedicationRequest]) (*connect.Response[mtmv1.AddMedicationResponse], error)
}, patientID, name string) string {
	t.Helper()
	res, err := care.AddMedication(context.Background(), req(&mtmv1.AddMedicationRequest{PatientId: patientID,
		Medication: &mtmv1.MedicationFields{Name: name, HowIUseIt: "1 tablet daily"}}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetMedication().GetId()
}

func TestSelfReportedMedicineStaysPendingUntilReviewed(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		care, me := e.careClient(rph), e.patientClient(pt.token)
		addMed(t, care, pt.id, "Metformin")
		cg := e.caregiver(pt, "cg@a.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES, mtmv1.CaregiverScope_CAREGIVER_SCOPE_MESSAGE})

		fish, err := me.ReportSelfMedication(ctx, req(&mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_SUPPLEMENT,
			Name: " Fish oil ", HowIUseIt: "1 capsule daily", StartedOn: "2026-02-01"}))
		if err != nil {
			t.Fatal(err)
		}
		wort, err := e.patientClient(cg.token).ReportSelfMedication(ctx, req(&mtmv1.ReportSelfMedicationRequest{PatientId: pt.id,
			Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_HERBAL, Name: "St. John's wort"}))
		if err != nil {
			t.Fatalf("caregiver with the message scope: %v", err)
		}

		pmlNames := func() []string {
			t.Helper()
			res, err := me.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id}))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range res.Msg.GetMedicationList().GetMedications() {
				names = append(names, m.GetName())
			}
			return names
		}
		if got := pmlNames(); !slices.Equal(got, []string{"Metformin"}) {
			t.Fatalf("PML medications = %v: a pending self-report must not appear as pharmacist-verified", got)
		}
		rec, err := care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rec.Msg.GetMedicationList().GetMedications()); n != 1 {
			t.Fatalf("the pharmacist's PML has %d rows, want 1 (pending reports stay apart)", n)
		}

		list, err := care.ListSelfReportedMedications(ctx, req(&mtmv1.ListSelfReportedMedicationsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if got := list.Msg.GetReports(); len(got) != 2 || got[0].GetName() != "Fish oil" || got[0].GetStatus() != mtmv1.SelfReportStatus_SELF_REPORT_STATUS_PENDING_REVIEW ||
			got[0].GetReportedBy() != pt.id || got[1].GetReportedBy() != cg.id || got[0].GetStartedOn() != "2026-02-01" {
			t.Fatalf("pending reports = %v", got)
		}

		// The FHIR export shows the pending one as patient-specified.
		exp, err := me.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		if err != nil {
			t.Fatal(err)
		}
		if !statementIsPatientSpecified(t, exp.Msg.GetContent(), "Fish oil") {
			t.Error("the FHIR export presents the pending Fish oil report as verified")
		}

		// Declining needs a reason.
		_, err = care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: pt.id, ReportId: wort.Msg.GetReportId(),
			Decision: mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, DeclineReason: "  "}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"decline_reason"}) {
			t.Errorf("violations = %v, want decline_reason", got)
		}
		dec, err := care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: pt.id, ReportId: wort.Msg.GetReportId(),
			Decision: mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, DeclineReason: "Interacts with your sertraline; let's talk"}))
		if err != nil {
			t.Fatal(err)
		}
		if r := dec.Msg.GetReport(); r.GetStatus() != mtmv1.SelfReportStatus_SELF_REPORT_STATUS_DECLINED || r.GetDeclineReason() == "" || dec.Msg.GetMedication() != nil {
			t.Errorf("declined report = %v, medication %v", r, dec.Msg.GetMedication())
		}

		// Accepting with the pharmacist's verified fields adds a PML row.
		acc, err := care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: pt.id, ReportId: fish.Msg.GetReportId(),
			Decision:   mtmv1.SelfReportDecision_SELF_REPORT_DECISION_ACCEPT,
			Medication: &mtmv1.MedicationFields{Name: "Fish oil", Strength: "1000 mg", HowIUseIt: "1 capsule daily with food", WhyIUseIt: "Heart health", StartedOn: "2026-02-01"}}))
		if err != nil {
			t.Fatal(err)
		}
		if m := acc.Msg.GetMedication(); m.GetName() != "Fish oil" || m.GetStrength() != "1000 mg" || acc.Msg.GetReport().GetMedicationId() != m.GetId() {
			t.Errorf("accepted: medication %v, report %v", m, acc.Msg.GetReport())
		}
		if got := pmlNames(); !slices.Equal(got, []string{"Metformin", "Fish oil"}) {
			t.Errorf("PML after accepting = %v", got)
		}

		// Resolved once only.
		_, err = care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: pt.id, ReportId: fish.Msg.GetReportId(),
			Decision: mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, DeclineReason: "changed my mind"}))
		wantCode(t, err, connect.CodeFailedPrecondition)
		if got := pmlNames(); len(got) != 2 {
			t.Errorf("a refused second decision changed the PML: %v", got)
		}
		list, err = care.ListSelfReportedMedications(ctx, req(&mtmv1.ListSelfReportedMedicationsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(list.Msg.GetReports()); n != 0 {
			t.Errorf("%d pending reports after resolving both, want 0", n)
		}
		list, err = care.ListSelfReportedMedications(ctx, req(&mtmv1.ListSelfReportedMedicationsRequest{PatientId: pt.id, IncludeResolved: true}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(list.Msg.GetReports()); n != 2 {
			t.Errorf("%d reports with resolved ones, want 2", n)
		}
	})
}

// statementIsPatientSpecified reports whether the Bundle's
// MedicationStatement for name is marked as patient-specified.
func statementIsPatientSpecified(t *testing.T, bundle []byte, name string) bool {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Medication   struct {
					Text string `json:"text"`
				} `json:"medicationCodeableConcept"`
				// An object on a MedicationStatement, an array on other
				// resources.
				Category json.RawMessage `json:"category"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Entry {
		r := e.Resource
		if r.ResourceType == "MedicationStatement" && r.Medication.Text == name {
			var category struct {
				Coding []struct {
					Code string `json:"code"`
				} `json:"coding"`
			}
			if err := json.Unmarshal(r.Category, &category); err != nil {
				return false
			}
			return len(category.Coding) == 1 && category.Coding[0].Code == "patientspecified"
		}
	}
	t.Fatalf("no MedicationStatement for %s", name)
	return false
}

func TestSelfReportBadInput(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		me := e.patientClient(pt.token)
		tests := []struct {
			name  string
			req   *mtmv1.ReportSelfMedicationRequest
			field string
		}{
			{"no kind", &mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Name: "Fish oil"}, "kind"},
			{"no name", &mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC}, "name"},
			{"blank name", &mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC, Name: "   "}, "name"},
			{"started in the future", &mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC, Name: "Fish oil", StartedOn: "2027-01-01"}, "started_on"},
			{"impossible date", &mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC, Name: "Fish oil", StartedOn: "2026-02-30"}, "started_on"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := me.ReportSelfMedication(context.Background(), req(tt.req))
				if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{tt.field}) {
					t.Errorf("violations = %v, want %s", got, tt.field)
				}
			})
		}
		pt2, err := e.store.GetPatient(context.Background(), pt.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt2.SelfReports) != 0 {
			t.Errorf("bad input stored %d reports", len(pt2.SelfReports))
		}
	})
}

func TestAdherenceForPatientAndPharmacist(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		far := e.pharmacy("ph_b", "rph@b.test")
		olive := e.enroll(rph, "Olive")
		otto := e.enroll(rph, "Otto")
		stranger := e.enroll(far, "Stan")
		care := e.careClient(rph)
		fill := func(c mtmv1connect.CareServiceClient, patientID, medID, on string, days int32) {
			t.Helper()
			if _, err := c.RecordFill(ctx, req(&mtmv1.RecordFillRequest{PatientId: patientID, MedicationId: medID, FilledOn: on, DaysSupply: days})); err != nil {
				t.Fatal(err)
			}
		}
		// Today is 2026-03-02; a 120-day window is 2025-11-03..2026-03-02,
		// and every first fill below is 119 days before its end (PQA
		// measures a patient from 91 days on).
		simvastatin := addMed(t, care, olive.id, "Simvastatin 40 mg")
		fill(care, olive.id, simvastatin, "2025-11-03", 30) // Nov 3–Dec 2
		atorvastatin := addMed(t, care, olive.id, "Atorvastatin 20 mg")
		fill(care, olive.id, atorvastatin, "2025-12-03", 30) // Dec 3–Jan 1
		fill(care, olive.id, atorvastatin, "2026-01-02", 60) // Jan 2–Mar 2: the statin class is covered every day
		metformin := addMed(t, care, olive.id, "Metformin 500 mg")
		fill(care, olive.id, metformin, "2025-11-03", 30)
		fill(care, olive.id, metformin, "2025-11-03", 30) // same day: shifts to Dec 3–Jan 1
		fill(care, olive.id, metformin, "2026-02-01", 10) // Feb 1–10: 70 of 120 days
		apixaban := addMed(t, care, olive.id, "Apixaban 5 mg")
		fill(care, olive.id, apixaban, "2025-11-03", 30) // one fill: not measured
		addMed(t, care, olive.id, "Ibuprofen")           // never filled: not measured
		ottoMed := addMed(t, care, otto.id, "Lisinopril 10 mg")
		fill(care, otto.id, ottoMed, "2025-11-03", 60)
		fill(care, otto.id, ottoMed, "2026-01-02", 60)
		farCare := e.careClient(far)
		stanMed := addMed(t, farCare, stranger.id, "Warfarin")
		fill(farCare, stranger.id, stanMed, "2025-11-03", 10)
		fill(farCare, stranger.id, stanMed, "2025-12-01", 10)

		type pdc struct {
			pdc   float64
			below bool
		}
		want := map[string]pdc{simvastatin: {1, false}, atorvastatin: {1, false}, metformin: {70.0 / 120, true}}
		check := func(all []*mtmv1.MedicationAdherence) {
			t.Helper()
			var got []*mtmv1.MedicationAdherence
			for _, a := range all {
				switch {
				case a.GetStatus() == mtmv1.AdherenceStatus_ADHERENCE_STATUS_SCORED:
					got = append(got, a)
				case a.GetMedicationId() == apixaban:
					// One fill: there, with why it is not scored.
					if a.GetStatus() != mtmv1.AdherenceStatus_ADHERENCE_STATUS_FEW_FILLS || a.GetStatusReason() == "" ||
						a.GetMeasure() != mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PER_MEDICINE || a.GetProportionOfDaysCovered() != 0 {
						t.Errorf("apixaban = %v, want per-medicine, not scored: few fills", a)
					}
				default:
					t.Errorf("unexpected entry %v", a)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("adherence for %d medicines, want %d: %v", len(got), len(want), got)
			}
			for _, a := range got {
				if a.GetPeriodStart() != "2025-11-03" || a.GetPeriodEnd() != "2026-03-02" {
					t.Errorf("%s: period %s..%s, want the 120-day window", a.GetMedicationId(), a.GetPeriodStart(), a.GetPeriodEnd())
				}
				wantMeasure := mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_STA
				if a.GetMedicationId() == metformin {
					wantMeasure = mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_DR
				}
				if a.GetMeasure() != wantMeasure {
					t.Errorf("%s: measure %v, want %v", a.GetMedicationId(), a.GetMeasure(), wantMeasure)
				}
				w, ok := want[a.GetMedicationId()]
				if !ok || a.GetProportionOfDaysCovered() != w.pdc || a.GetBelowThreshold() != w.below {
					t.Errorf("%s: PDC %v below %v, want %v %v", a.GetMedicationId(), a.GetProportionOfDaysCovered(), a.GetBelowThreshold(), w.pdc, w.below)
				}
			}
		}
		mine, err := e.patientClient(olive.token).GetAdherence(ctx, req(&mtmv1.GetAdherenceRequest{PatientId: olive.id, WindowDays: 120}))
		if err != nil {
			t.Fatal(err)
		}
		check(mine.Msg.GetMedications())
		theirs, err := care.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: olive.id, WindowDays: 120}))
		if err != nil {
			t.Fatal(err)
		}
		check(theirs.Msg.GetMedications())
		// By default the period is the measurement year to date: on 2 March
		// no first fill of 2026 is 91 days old, so nothing is measured yet.
		ytd, err := care.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: olive.id}))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range ytd.Msg.GetMedications() {
			if a.GetStatus() == mtmv1.AdherenceStatus_ADHERENCE_STATUS_SCORED || a.GetPeriodStart() != "2026-01-01" {
				t.Errorf("measurement year to 2 March: %v, want nothing scored", a)
			}
		}
		// The pharmacy's list is kept for the measurement year only (see
		// TestWorklistsFollowFillsReviewsAndTheClock).
		_, err = care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{WindowDays: 120}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"window_days"}) {
			t.Errorf("list with a window: violations = %v, want window_days", got)
		}

		// A stopped medicine is measured up to its stop date and leaves the
		// pharmacist's below-threshold list.
		med, err := care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: olive.id}))
		if err != nil {
			t.Fatal(err)
		}
		var version int64
		for _, m := range med.Msg.GetMedicationList().GetMedications() {
			if m.GetId() == metformin {
				version = m.GetVersion()
			}
		}
		if _, err := care.StopMedication(ctx, req(&mtmv1.StopMedicationRequest{PatientId: olive.id, MedicationId: metformin, ExpectedVersion: version,
			StoppedOn: "2026-02-10", WhyStopped: "Stomach upset"})); err != nil {
			t.Fatal(err)
		}
		want[metformin] = pdc{0.7, true} // 70 of the 100 days Nov 3–Feb 10
		mine, err = e.patientClient(olive.token).GetAdherence(ctx, req(&mtmv1.GetAdherenceRequest{PatientId: olive.id, WindowDays: 120}))
		if err != nil {
			t.Fatal(err)
		}
		check(mine.Msg.GetMedications())

		_, err = care.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: olive.id, WindowDays: 731}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"window_days"}) {
			t.Errorf("violations = %v, want window_days", got)
		}
		_, err = farCare.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: olive.id}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

func TestReviewsAndCMRDue(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		far := e.pharmacy("ph_b", "rph@b.test")
		olive := e.enroll(rph, "Olive")
		otto := e.enroll(rph, "Otto")
		e.enroll(far, "Stan")
		care := e.careClient(rph)

		due := func(c mtmv1connect.CareServiceClient, by string) map[string]string {
			t.Helper()
			res, err := c.ListPatientsDueForCmr(ctx, req(&mtmv1.ListPatientsDueForCmrRequest{DueBy: by}))
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, d := range res.Msg.GetPatients() {
				out[d.GetPatient().GetGivenName()] = d.GetNextCmrDueOn()
			}
			return out
		}
		if got := due(care, ""); len(got) != 2 || got["Olive"] != "2026-03-02" || got["Otto"] != "2026-03-02" {
			t.Fatalf("due now = %v, want Olive and Otto due since enrollment (and not the other pharmacy's Stan)", got)
		}

		// A follow-up the reminders service scheduled, to link to the review.
		if _, err := e.store.UpdatePatient(ctx, olive.id, func(p store.Patient) (store.Patient, error) {
			p.FollowUps = append(p.FollowUps, store.FollowUp{ID: "fu_1", DueAt: e.clock.Now().Add(14 * 24 * time.Hour), CreatedBy: "ac_ph_a", CreatedAt: e.clock.Now()})
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		res, err := care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: olive.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_FACE_TO_FACE, ReviewedOn: "2026-02-27",
			ProblemsFound: []string{"Possible interaction: St. John's wort with sertraline"},
			Interventions: []string{"Counselled on glucose monitoring"},
			InterventionDetails: []*mtmv1.Intervention{{Kind: mtmv1.InterventionKind_INTERVENTION_KIND_REFERRAL, Description: "Stop St. John's wort",
				ReferredTo: "Dr. Rivera"}},
			FollowUpIds: []string{"fu_1"}}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.GetNextCmrDueOn() != "2027-02-27" {
			t.Errorf("next CMR due %s, want 2027-02-27", res.Msg.GetNextCmrDueOn())
		}
		if got := due(care, ""); len(got) != 1 || got["Otto"] == "" {
			t.Errorf("due now after Olive's CMR = %v, want only Otto", got)
		}
		if got := due(care, "2027-03-01"); got["Olive"] != "2027-02-27" {
			t.Errorf("due by 2027-03-01 = %v, want Olive due 2027-02-27", got)
		}

		// The outcome of the referral comes later.
		out, err := care.SetInterventionOutcome(ctx, req(&mtmv1.SetInterventionOutcomeRequest{PatientId: olive.id, ReviewId: res.Msg.GetReviewId(),
			InterventionIndex: 1, Outcome: "Prescriber agreed; patient stopped it"}))
		if err != nil {
			t.Fatal(err)
		}
		if iv := out.Msg.GetReview().GetInterventions(); len(iv) != 2 || iv[1].GetOutcome() == "" || iv[0].GetOutcome() != "" {
			t.Errorf("interventions = %v", iv)
		}
		_, err = care.SetInterventionOutcome(ctx, req(&mtmv1.SetInterventionOutcomeRequest{PatientId: olive.id, ReviewId: res.Msg.GetReviewId(),
			InterventionIndex: 2, Outcome: "x"}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"intervention_index"}) {
			t.Errorf("violations = %v, want intervention_index", got)
		}

		list, err := care.ListReviews(ctx, req(&mtmv1.ListReviewsRequest{PatientId: olive.id}))
		if err != nil {
			t.Fatal(err)
		}
		rv := list.Msg.GetReviews()
		if len(rv) != 1 || list.Msg.GetLastCmrOn() != "2026-02-27" || list.Msg.GetNextCmrDueOn() != "2027-02-27" {
			t.Fatalf("reviews = %v, last %s next %s", rv, list.Msg.GetLastCmrOn(), list.Msg.GetNextCmrDueOn())
		}
		r := rv[0]
		if r.GetKind() != mtmv1.ReviewKind_REVIEW_KIND_CMR || r.GetDeliveryMethod() != mtmv1.DeliveryMethod_DELIVERY_METHOD_FACE_TO_FACE ||
			r.GetPharmacistId() != "ac_ph_a" || !slices.Equal(r.GetFollowUpIds(), []string{"fu_1"}) || len(r.GetProblemsFound()) != 1 ||
			r.GetInterventions()[1].GetKind() != mtmv1.InterventionKind_INTERVENTION_KIND_REFERRAL || r.GetInterventions()[1].GetReferredTo() != "Dr. Rivera" {
			t.Errorf("review = %v", r)
		}
		stored, err := e.store.GetPatient(ctx, olive.id)
		if err != nil {
			t.Fatal(err)
		}
		if stored.FollowUps[0].ReviewID != r.GetId() {
			t.Errorf("follow-up links review %q, want %q", stored.FollowUps[0].ReviewID, r.GetId())
		}

		// Bad input and other patients' records.
		tests := []struct {
			name  string
			req   *mtmv1.RecordReviewRequest
			code  connect.Code
			field string
		}{
			{"no kind", &mtmv1.RecordReviewRequest{PatientId: otto.id, DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER, ReviewedOn: "2026-03-01"}, connect.CodeInvalidArgument, "kind"},
			{"no delivery method", &mtmv1.RecordReviewRequest{PatientId: otto.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR, ReviewedOn: "2026-03-01"}, connect.CodeInvalidArgument, "delivery_method"},
			{"review in the future", &mtmv1.RecordReviewRequest{PatientId: otto.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR, DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER, ReviewedOn: "2026-04-01"}, connect.CodeInvalidArgument, "reviewed_on"},
			{"referral to no one", &mtmv1.RecordReviewRequest{PatientId: otto.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR, DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER, ReviewedOn: "2026-03-01",
				InterventionDetails: []*mtmv1.Intervention{{Kind: mtmv1.InterventionKind_INTERVENTION_KIND_REFERRAL, Description: "see a dietitian"}}}, connect.CodeInvalidArgument, "intervention_details[0].referred_to"},
			{"unknown follow-up", &mtmv1.RecordReviewRequest{PatientId: otto.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR, DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER, ReviewedOn: "2026-03-01",
				FollowUpIds: []string{"fu_1"}}, connect.CodeNotFound, ""}, // fu_1 is Olive's, not Otto's
			{"follow-up of another review", &mtmv1.RecordReviewRequest{PatientId: olive.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR, DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER, ReviewedOn: "2026-03-01",
				FollowUpIds: []string{"fu_1"}}, connect.CodeFailedPrecondition, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := care.RecordReview(ctx, req(tt.req))
				ce := wantCode(t, err, tt.code)
				if tt.field != "" {
					if got := violatedFields(t, ce); !slices.Equal(got, []string{tt.field}) {
						t.Errorf("violations = %v, want %s", got, tt.field)
					}
				}
			})
		}
		ottoNow, err := e.store.GetPatient(ctx, otto.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ottoNow.Reviews) != 0 {
			t.Errorf("refused reviews were stored: %v", ottoNow.Reviews)
		}
		_, err = e.careClient(far).RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: olive.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_OTHER, ReviewedOn: "2026-03-01"}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = e.careClient(far).ListReviews(ctx, req(&mtmv1.ListReviewsRequest{PatientId: olive.id}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

func TestExportRecord(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		care := e.careClient(rph)
		addMed(t, care, pt.id, "Metformin")
		if _, err := care.AddActionItem(ctx, req(&mtmv1.AddActionItemRequest{PatientId: pt.id, WhatWeTalkedAbout: "Sugar after dinner", WhatINeedToDo: "Walk after dinner"})); err != nil {
			t.Fatal(err)
		}
		if _, err := care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: pt.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEHEALTH, ReviewedOn: "2026-03-01"})); err != nil {
			t.Fatal(err)
		}
		me := e.patientClient(pt.token)
		now := e.clock.Now()
		if _, _, _, err := e.store.CreateThread(ctx, store.Thread{ID: "th_export", PatientID: pt.id, PharmacyID: "ph_a", Subject: "Ibuprofen?", StartedBy: pt.id,
			State: store.ThreadOpen, StateSince: now, CreatedAt: now, UpdatedAt: now},
			store.Message{ClientMessageID: "cm_1", AuthorID: pt.id, AuthorRole: store.RolePatient, Body: "Can I take ibuprofen?", SentAt: now}); err != nil {
			t.Fatal(err)
		}

		fhirRes, err := me.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		if err != nil {
			t.Fatal(err)
		}
		if ct := fhirRes.Msg.GetContentType(); ct != "application/fhir+json" {
			t.Errorf("content type %q", ct)
		}
		var bundle map[string]any
		if err := json.Unmarshal(fhirRes.Msg.GetContent(), &bundle); err != nil || bundle["resourceType"] != "Bundle" {
			t.Fatalf("not a FHIR Bundle: %v", err)
		}
		// A transaction naming the pharmacist who keeps the PML as a
		// Practitioner, with the CMR as a Procedure.
		for _, s := range []string{"Metformin", "Walk after dinner", `"name":"ph_a"`, `"resourceType":"Communication"`, "Can I take ibuprofen?",
			`"type":"transaction"`, `"text":"RPh ph_a"`, `"value":"ac_ph_a"`, `"code":"182836005"`} {
			if !bytes.Contains(fhirRes.Msg.GetContent(), []byte(s)) {
				t.Errorf("FHIR export lacks %s", s)
			}
		}

		pdfRes, err := me.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF}))
		if err != nil {
			t.Fatal(err)
		}
		if ct := pdfRes.Msg.GetContentType(); ct != "application/pdf" || !bytes.HasPrefix(pdfRes.Msg.GetContent(), []byte("%PDF-")) {
			t.Errorf("PDF export: content type %q, starts %q", ct, pdfRes.Msg.GetContent()[:min(8, len(pdfRes.Msg.GetContent()))])
		}

		_, err = me.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"format"}) {
			t.Errorf("violations = %v, want format", got)
		}
		// A caregiver who may see the medicines but not the plan cannot
		// export the record, which holds both.
		medsOnly := e.caregiver(pt, "meds@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
		_, err = e.patientClient(medsOnly.token).ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF}))
		wantCode(t, err, connect.CodeNotFound)
		both := e.caregiver(pt, "both@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES, mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_PLAN})
		cgRes, err := e.patientClient(both.token).ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		if err != nil {
			t.Fatalf("caregiver with both scopes: %v", err)
		}
		if bytes.Contains(cgRes.Msg.GetContent(), []byte("Can I take ibuprofen?")) {
			t.Error("a caregiver without the message scope got the patient's messages in the export")
		}
		// Another patient's record looks like a missing one.
		other := e.enroll(rph, "Otto")
		_, err = e.patientClient(other.token).ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		wantCode(t, err, connect.CodeNotFound)
		if strings.Contains(err.Error(), "Metformin") {
			t.Error("the refusal leaks record content")
		}
	})
}

// TestExportRecordRefusesWhatThePDFCannotPrint: an allergy written in a
// script the PDF cannot print fails the export naming the field, rather
// than a document with the allergy missing; FHIR still carries it.
func TestExportRecordRefusesWhatThePDFCannotPrint(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		care := e.careClient(rph)
		res, err := care.AddAllergy(ctx, req(&mtmv1.AddAllergyRequest{PatientId: pt.id, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: "Sulfa", Reaction: "طفح جلدي"}))
		if err != nil {
			t.Fatal(err)
		}
		me := e.patientClient(pt.token)
		_, err = me.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF}))
		wantCode(t, err, connect.CodeFailedPrecondition)
		if field := fmt.Sprintf("allergies[%q].reaction", res.Msg.GetAllergy().GetId()); !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
		fhirRes, err := me.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(fhirRes.Msg.GetContent()), "طفح جلدي") {
			t.Error("the FHIR export lost the reaction")
		}
	})
}

// TestPharmacistExportsAndDeliversTheSummary: the pharmacist produces the
// written CMR summary (the CMS PDF) and the FHIR Bundle, and records when
// and how the summary reached the patient; CMS counts 14 days from the CMR.
func TestPharmacistExportsAndDeliversTheSummary(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		care := e.careClient(rph)
		addMed(t, care, pt.id, "Metformin")
		rv, err := care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: pt.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEPHONE, ReviewedOn: "2026-03-01"}))
		if err != nil {
			t.Fatal(err)
		}
		if due := rv.Msg.GetReview().GetSummaryDueBy(); due != "2026-03-15" {
			t.Errorf("summary due by %q, want 14 days after the CMR, 2026-03-15", due)
		}
		pdf, err := care.ExportPatientRecord(ctx, req(&mtmv1.ExportPatientRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF}))
		if err != nil {
			t.Fatal(err)
		}
		if pdf.Msg.GetContentType() != "application/pdf" || !bytes.Contains(pdf.Msg.GetContent(), []byte("%PDF-")) {
			t.Errorf("pharmacist's PDF export: %q", pdf.Msg.GetContentType())
		}
		bundle, err := care.ExportPatientRecord(ctx, req(&mtmv1.ExportPatientRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bundle.Msg.GetContent(), []byte("Metformin")) {
			t.Error("pharmacist's FHIR export lacks the medicine")
		}

		deliver := func(on string) (*connect.Response[mtmv1.RecordSummaryDeliveredResponse], error) {
			return care.RecordSummaryDelivered(ctx, req(&mtmv1.RecordSummaryDeliveredRequest{PatientId: pt.id, ReviewId: rv.Msg.GetReviewId(), DeliveredOn: on,
				Method: mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_MAIL, Recipient: mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_PATIENT}))
		}
		_, err = deliver("2026-02-28")
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"delivered_on"}) {
			t.Errorf("delivery before the review: violations %v", got)
		}
		_, err = deliver(e.clock.Now().AddDate(0, 0, 2).Format("2006-01-02"))
		wantCode(t, err, connect.CodeInvalidArgument)
		if _, err := deliver("2026-03-02"); err != nil {
			t.Fatal(err)
		}
		list, err := care.ListReviews(ctx, req(&mtmv1.ListReviewsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		got := list.Msg.GetReviews()[0]
		if got.GetSummaryDeliveredOn() != "2026-03-02" || got.GetSummaryDeliveryMethod() != mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_MAIL ||
			got.GetSummaryRecipient() != mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_PATIENT {
			t.Errorf("the delivery was not kept: %v", got)
		}
		// The FHIR export's Procedure for the CMR says so too.
		bundle, err = care.ExportPatientRecord(ctx, req(&mtmv1.ExportPatientRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bundle.Msg.GetContent(), []byte("Written summary delivered on 2026-03-02 by mail to patient")) {
			t.Error("the FHIR export does not say when and how the summary was delivered")
		}
	})
}

// TestPreferredLanguageSelectsThePDFWording: the language set on the
// profile is kept in canonical form and chooses the PDF's wording.
func TestPreferredLanguageSelectsThePDFWording(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		me := e.patientClient(pt.token)
		_, err := me.UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, PreferredLanguage: "e$"}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"preferred_language"}) {
			t.Errorf("violations = %v, want preferred_language", got)
		}
		res, err := me.UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, PreferredLanguage: "es-us"}))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Msg.GetPatient().GetPreferredLanguage(); got != "es-US" {
			t.Errorf("preferred language %q, want es-US", got)
		}
		text, err := cmspdfText(t, e, pt)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "Lista de medicamentos para") {
			t.Errorf("a Spanish-speaking patient's PDF is not in Spanish: %.300s", text)
		}
	})
}

// cmspdfText exports the patient's CMS PDF and returns its text
// (pdftotext, from poppler-utils).
func cmspdfText(t *testing.T, e *env, pt enrolled) (string, error) {
	t.Helper()
	res, err := e.patientClient(pt.token).ExportRecord(context.Background(), req(&mtmv1.ExportRecordRequest{PatientId: pt.id, Format: mtmv1.ExportFormat_EXPORT_FORMAT_CMS_PDF}))
	if err != nil {
		return "", err
	}
	path := filepath.Join(t.TempDir(), "record.pdf")
	if err := os.WriteFile(path, res.Msg.GetContent(), 0o600); err != nil {
		return "", err
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", path, "-").Output()
	return strings.Join(strings.Fields(string(out)), " "), err
}

// TestContactsReachTheLetter: the pharmacy admin's phone, hours and TTY,
// the patient's address and care team, and the prescriber's phone are kept
// and printed on the PDF the patient gets.
func TestContactsReachTheLetter(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		care := e.careClient(rph)
		_, err := care.UpdatePharmacy(ctx, req(&mtmv1.UpdatePharmacyRequest{Name: "Main Street Pharmacy", Phone: "217-555-0100", Tty: "711",
			Hours: "Mon-Fri 9 AM-6 PM", Address: "100 Main Street\nSpringfield, IL 62701", Npi: "12345"}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"npi"}) {
			t.Errorf("violations = %v, want npi", got)
		}
		ph, err := care.UpdatePharmacy(ctx, req(&mtmv1.UpdatePharmacyRequest{Name: "Main Street Pharmacy", Phone: "217-555-0100", Tty: "711",
			Hours: "Mon-Fri 9 AM-6 PM", Address: "100 Main Street\nSpringfield, IL 62701", Npi: "1234567893"}))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := care.GetPharmacy(ctx, req(&mtmv1.GetPharmacyRequest{})); err != nil || got.Msg.GetPharmacy().GetTty() != "711" {
			t.Errorf("GetPharmacy = %v, %v", got, err)
		}
		if ph.Msg.GetPharmacy().GetNpi() != "1234567893" {
			t.Errorf("NPI not kept: %v", ph.Msg.GetPharmacy())
		}
		if _, err := care.SetPatientContacts(ctx, req(&mtmv1.SetPatientContactsRequest{PatientId: pt.id, Address: "1200 W Maple Ave\nSpringfield, IL 62704",
			Phone: "217-555-0143", PrimaryCare: &mtmv1.Contact{Name: "Dr. Amara Okafor", Phone: "217-555-0110"},
			EmergencyContact: &mtmv1.Contact{Name: "Bluto", Relationship: "son", Phone: "call me maybe"}})); err == nil {
			t.Error("a phone number of letters was accepted")
		}
		res, err := care.SetPatientContacts(ctx, req(&mtmv1.SetPatientContactsRequest{PatientId: pt.id, Address: "1200 W Maple Ave\nSpringfield, IL 62704",
			Phone: "217-555-0143", PrimaryCare: &mtmv1.Contact{Name: "Dr. Amara Okafor", Phone: "217-555-0110"},
			EmergencyContact: &mtmv1.Contact{Name: "Bluto", Relationship: "son", Phone: "217-555-0199"}}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.GetPatient().GetEmergencyContact().GetRelationship() != "son" {
			t.Errorf("emergency contact not kept: %v", res.Msg.GetPatient())
		}
		text, err := cmspdfText(t, e, pt)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"217-555-0100", "Hours: Mon-Fri 9 AM-6 PM", "TTY: 711", "1200 W Maple Ave", "Primary care provider: Dr. Amara Okafor, 217-555-0110",
			"Emergency contact: Bluto (son), 217-555-0199"} {
			if !strings.Contains(text, w) {
				t.Errorf("%q missing from the patient's PDF", w)
			}
		}
	})
}

// TestCodedDocumentation: problems carry a category, interventions an
// action and a coded outcome beside their free text, and the review list
// counts the Part D MTM data elements (recommendations to prescribers and
// those resolved).
func TestCodedDocumentation(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Olive")
		care := e.careClient(rph)
		rv, err := care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: pt.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_FACE_TO_FACE, ReviewedOn: "2026-03-01", CognitiveImpairment: true,
			CodedProblems: []*mtmv1.CodedProblem{{Category: mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_DOSAGE_TOO_HIGH, Description: "Metformin above renal limit"}},
			InterventionDetails: []*mtmv1.Intervention{
				{Kind: mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION, Description: "Reduce metformin to 500 mg twice daily",
					Action: mtmv1.InterventionAction_INTERVENTION_ACTION_RECOMMENDATION_TO_PRESCRIBER},
				{Kind: mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION, Description: "Stop aspirin (no indication)",
					Action: mtmv1.InterventionAction_INTERVENTION_ACTION_RECOMMENDATION_TO_PRESCRIBER},
				{Kind: mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION, Description: "Pill organizer", Action: mtmv1.InterventionAction_INTERVENTION_ACTION_COUNSELLED_PATIENT},
			}}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.SetInterventionOutcome(ctx, req(&mtmv1.SetInterventionOutcomeRequest{PatientId: pt.id, ReviewId: rv.Msg.GetReviewId(), InterventionIndex: 0,
			Outcome: "Dr. Lee reduced the dose", OutcomeCode: mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_ACCEPTED_IMPLEMENTED})); err != nil {
			t.Fatal(err)
		}
		if _, err := care.SetInterventionOutcome(ctx, req(&mtmv1.SetInterventionOutcomeRequest{PatientId: pt.id, ReviewId: rv.Msg.GetReviewId(), InterventionIndex: 1,
			Outcome: "Prescriber wants to keep it", OutcomeCode: mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_NOT_ACCEPTED})); err != nil {
			t.Fatal(err)
		}
		list, err := care.ListReviews(ctx, req(&mtmv1.ListReviewsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if got := list.Msg; got.GetRecommendationsToPrescriber() != 2 || got.GetRecommendationsResolved() != 1 {
			t.Errorf("recommendations %d, resolved %d; want 2 and 1", got.GetRecommendationsToPrescriber(), got.GetRecommendationsResolved())
		}
		r := list.Msg.GetReviews()[0]
		if !r.GetCognitiveImpairment() || len(r.GetCodedProblems()) != 1 ||
			r.GetCodedProblems()[0].GetCategory() != mtmv1.DrugTherapyProblemCategory_DRUG_THERAPY_PROBLEM_CATEGORY_DOSAGE_TOO_HIGH {
			t.Errorf("coded review not kept: %v", r)
		}
		if iv := r.GetInterventions()[0]; iv.GetOutcome() != "Dr. Lee reduced the dose" ||
			iv.GetOutcomeCode() != mtmv1.InterventionOutcomeCode_INTERVENTION_OUTCOME_CODE_ACCEPTED_IMPLEMENTED {
			t.Errorf("intervention outcome not kept with its free text: %v", iv)
		}
		// An uncoded problem category is refused, naming the field.
		_, err = care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: pt.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEPHONE, ReviewedOn: "2026-03-01",
			CodedProblems: []*mtmv1.CodedProblem{{Description: "no category"}}}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); len(got) != 1 || !strings.HasPrefix(got[0], "coded_problems") {
			t.Errorf("violations = %v, want coded_problems[0].category", got)
		}
	})
}

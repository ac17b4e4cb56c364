package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mtmapp/mtm/loadtest/seed"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestWorklistsFollowFillsReviewsAndTheClock checks the pharmacy work
// lists as a pharmacist sees them: they answer the right patients after
// fills, reviews, follow-ups and conditions are recorded, and as days pass
// with nothing recorded (a patient falls below 80% PDC, a follow-up comes
// due, a new measurement year begins), on both stores.
func TestWorklistsFollowFillsReviewsAndTheClock(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		far := e.pharmacy("ph_b", "rph@b.test")
		olive, otto := e.enroll(rph, "Olive"), e.enroll(rph, "Otto")
		stan := e.enroll(far, "Stan")
		care, farCare := e.careClient(rph), e.careClient(far)
		names := map[string]string{olive.id: "Olive", otto.id: "Otto", stan.id: "Stan"}
		signIn := func(email string) mtmv1connect.CareServiceClient {
			t.Helper()
			res, err := e.authClient().Login(ctx, req(&mtmv1.LoginRequest{Email: email, Password: "correct horse battery"}))
			if err != nil {
				t.Fatal(err)
			}
			return e.careClient(res.Msg.GetTokens().GetAccessToken())
		}
		setDay := func(day string) { // noon UTC, morning in Chicago; the pharmacists sign in again
			t.Helper()
			d, err := time.Parse(time.DateOnly, day)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(d.Add(12 * time.Hour).Sub(e.clock.Now()))
			care, farCare = signIn("rph@a.test"), signIn("rph@b.test")
		}
		fill := func(c mtmv1connect.CareServiceClient, patientID, medID, on string, days int32) {
			t.Helper()
			if _, err := c.RecordFill(ctx, req(&mtmv1.RecordFillRequest{PatientId: patientID, MedicationId: medID, FilledOn: on, DaysSupply: days})); err != nil {
				t.Fatal(err)
			}
		}
		below := func(c mtmv1connect.CareServiceClient) []string {
			t.Helper()
			res, err := c.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range res.Msg.GetPatients() {
				out = append(out, names[p.GetPatient().GetId()]+" "+p.GetBelowSince())
			}
			return out
		}
		cmrDue := func(by string) []string {
			t.Helper()
			res, err := care.ListPatientsDueForCmr(ctx, req(&mtmv1.ListPatientsDueForCmrRequest{DueBy: by}))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range res.Msg.GetPatients() {
				out = append(out, names[p.GetPatient().GetId()]+" "+p.GetNextCmrDueOn())
			}
			return out
		}
		overdue := func() []string {
			t.Helper()
			res, err := care.ListOverdueFollowUps(ctx, req(&mtmv1.ListOverdueFollowUpsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, f := range res.Msg.GetFollowUps() {
				out = append(out, names[f.GetPatient().GetId()])
			}
			return out
		}
		expect := func(what string, got []string, want ...string) {
			t.Helper()
			if !slices.Equal(got, want) {
				t.Fatalf("%s = %q, want %q", what, got, want)
			}
		}

		// 2 March 2026: both enrolled today, due for a CMR at once.
		due := cmrDue("")
		slices.Sort(due) // same day: in patient id order
		expect("CMR due on enrollment", due, "Olive 2026-03-02", "Otto 2026-03-02")
		if _, err := care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: olive.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_FACE_TO_FACE, ReviewedOn: "2026-03-02"})); err != nil {
			t.Fatal(err)
		}
		expect("CMR due after Olive's CMR", cmrDue(""), "Otto 2026-03-02")
		expect("CMR due by a year on", cmrDue("2027-03-02"), "Otto 2026-03-02", "Olive 2027-03-02")

		// Olive: a statin for 60 days from 2 January; PQA measures her
		// from 3 April (91 days), when she has 60 of 92 days. Otto: a RASA
		// for 90 + 90 days from 2 January, covered through 30 June. Stan,
		// another pharmacy's, misses as much as Olive.
		statin := addMed(t, care, olive.id, "Atorvastatin 20 mg")
		fill(care, olive.id, statin, "2026-01-02", 30)
		fill(care, olive.id, statin, "2026-02-01", 30)
		rasa := addMed(t, care, otto.id, "Lisinopril 10 mg")
		fill(care, otto.id, rasa, "2026-01-02", 90)
		fill(care, otto.id, rasa, "2026-03-02", 90) // overlaps: shifted to 2 April
		stanMed := addMed(t, farCare, stan.id, "Simvastatin 40 mg")
		fill(farCare, stan.id, stanMed, "2026-01-02", 30)
		fill(farCare, stan.id, stanMed, "2026-02-01", 30)
		expect("below 80% on 2 March (no one measured yet)", below(care))
		setDay("2026-04-02")
		expect("below 80% on 2 April", below(care))
		setDay("2026-04-03")
		expect("below 80% on 3 April", below(care), "Olive 2026-04-03")
		expect("the other pharmacy's list", below(farCare), "Stan 2026-04-03")
		res, err := care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if m := res.Msg.GetPatients()[0].GetMedications(); len(m) != 1 || m[0].GetMedicationId() != statin ||
			m[0].GetMeasure() != mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_STA || m[0].GetDaysCovered() != 60 || m[0].GetDaysInPeriod() != 92 ||
			m[0].GetPeriodStart() != "2026-01-01" || m[0].GetTreatmentStart() != "2026-01-02" {
			t.Fatalf("Olive's medicines below = %v, want her statin, PDC-STA, 60 of 92 days from 2 January", m)
		}

		// A fill recorded late (picked up 3 March, 60 days) covers her
		// through 1 May: she leaves the list, and returns when 120 covered
		// days fall under 80% (on day 151, 1 June) with nothing filled.
		fill(care, olive.id, statin, "2026-03-03", 60)
		expect("below 80% after the late fill", below(care))
		setDay("2026-05-31")
		expect("below 80% on 31 May", below(care))
		setDay("2026-07-01")
		expect("below 80% on 1 July", below(care), "Olive 2026-06-01")
		// Otto: 180 covered days from 2 January fall under 80% on day 226,
		// 15 August.
		setDay("2026-08-31")
		expect("below 80% on 31 August", below(care), "Olive 2026-06-01", "Otto 2026-08-15")
		// Pages of one, following the token.
		first, err := care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 1}))
		if err != nil {
			t.Fatal(err)
		}
		second, err := care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 1, PageToken: first.Msg.GetNextPageToken()}))
		if err != nil {
			t.Fatal(err)
		}
		if p1, p2 := first.Msg.GetPatients(), second.Msg.GetPatients(); len(p1) != 1 || p1[0].GetPatient().GetId() != olive.id || !first.Msg.GetTruncated() ||
			len(p2) != 1 || p2[0].GetPatient().GetId() != otto.id {
			t.Fatalf("pages of one: %v then %v", p1, p2)
		}
		_, err = care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageToken: "nonsense"}))
		if got := violatedFields(t, wantCode(t, err, connect.CodeInvalidArgument)); !slices.Equal(got, []string{"page_token"}) {
			t.Errorf("bad page token: violations %v", got)
		}

		// Hospice from 1 August excludes Otto; his adherence says why.
		cond, err := care.RecordClinicalCondition(ctx, req(&mtmv1.RecordClinicalConditionRequest{PatientId: otto.id,
			Kind: mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_HOSPICE, From: "2026-08-01", Note: "Enrolled in home hospice"}))
		if err != nil {
			t.Fatal(err)
		}
		expect("below 80% after Otto's hospice enrolment", below(care), "Olive 2026-06-01")
		adh, err := care.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: otto.id}))
		if err != nil {
			t.Fatal(err)
		}
		if m := adh.Msg.GetMedications(); len(m) != 1 || m[0].GetStatus() != mtmv1.AdherenceStatus_ADHERENCE_STATUS_EXCLUDED_HOSPICE || m[0].GetStatusReason() == "" {
			t.Fatalf("Otto's adherence in hospice = %v", m)
		}
		rec, err := care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: otto.id}))
		if err != nil {
			t.Fatal(err)
		}
		if c := rec.Msg.GetConditions(); len(c) != 1 || c[0].GetId() != cond.Msg.GetCondition().GetId() || c[0].GetFrom() != "2026-08-01" || c[0].GetThrough() != "" {
			t.Fatalf("Otto's record's conditions = %v", c)
		}
		// Entered in error: removed, he is back.
		if _, err := care.RemoveClinicalCondition(ctx, req(&mtmv1.RemoveClinicalConditionRequest{PatientId: otto.id, ConditionId: cond.Msg.GetCondition().GetId()})); err != nil {
			t.Fatal(err)
		}
		expect("below 80% after the hospice entry is removed", below(care), "Olive 2026-06-01", "Otto 2026-08-15")
		// A hospital stay, 20 to 25 August: its 6 days leave the period
		// (2 January to 31 August, 242 days).
		stay, err := care.RecordClinicalCondition(ctx, req(&mtmv1.RecordClinicalConditionRequest{PatientId: otto.id,
			Kind: mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_INPATIENT, From: "2026-08-20"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.EndClinicalCondition(ctx, req(&mtmv1.EndClinicalConditionRequest{PatientId: otto.id, ConditionId: stay.Msg.GetCondition().GetId(), Through: "2026-08-19"})); err == nil {
			t.Fatal("a discharge before the admission was accepted")
		}
		if _, err := care.EndClinicalCondition(ctx, req(&mtmv1.EndClinicalConditionRequest{PatientId: otto.id, ConditionId: stay.Msg.GetCondition().GetId(), Through: "2026-08-25"})); err != nil {
			t.Fatal(err)
		}
		adh, err = care.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: otto.id}))
		if err != nil {
			t.Fatal(err)
		}
		if m := adh.Msg.GetMedications(); len(m) != 1 || m[0].GetDaysInPeriod() != 242-6 || m[0].GetDaysCovered() != 180 ||
			m[0].GetMeasure() != mtmv1.AdherenceMeasure_ADHERENCE_MEASURE_PDC_RASA {
			t.Fatalf("Otto's adherence with a hospital stay = %v, want PDC-RASA 180 of 236 days", m)
		}
		expect("below 80% after Otto's hospital stay", below(care), "Olive 2026-06-01", "Otto 2026-08-15")

		// A follow-up comes due as days pass; a later review does it.
		if _, err := care.ScheduleFollowUp(ctx, req(&mtmv1.ScheduleFollowUpRequest{PatientId: otto.id, DueAt: timestamppb.New(e.clock.Now().Add(7 * 24 * time.Hour))})); err != nil {
			t.Fatal(err)
		}
		expect("overdue follow-ups on the day scheduled", overdue())
		setDay("2026-09-08")
		expect("overdue follow-ups 8 days on", overdue(), "Otto")
		if _, err := care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: otto.id, Kind: mtmv1.ReviewKind_REVIEW_KIND_TMR,
			DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEPHONE, ReviewedOn: "2026-09-08"})); err != nil {
			t.Fatal(err)
		}
		expect("overdue follow-ups after the TMR", overdue())

		// A new measurement year: nothing filled in 2027, no one measured.
		setDay("2027-01-05")
		expect("below 80% in January of the next year", below(care))
		// The list rewrote the stale dates: the next call has nothing to skip.
		for _, id := range []string{olive.id, otto.id} {
			pt, err := e.store.GetPatient(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !pt.Worklist.BelowPDC.IsZero() {
				t.Errorf("%s's below-80%% date after the year ended = %v, want none", names[id], pt.Worklist.BelowPDC)
			}
		}
		expect("CMR due in January of the next year", cmrDue(""), "Otto 2026-03-02")
	})
}

// TestWorklistPagesAsBefore reads every page (25 at a time) of the three
// work lists of a load-test pharmacy (loadtest/seed: 5–20 medicines, a
// quarter below 80% PDC, a quarter with an overdue follow-up), on both
// stores, and compares what a pharmacist is shown — the patients, their
// order, their figures, the page tokens — with a digest of the answers the
// code gave before the lists were made faster (commit 514ce25), and that
// reading them again gives the same.
func TestWorklistPagesAsBefore(t *testing.T) {
	const want = "3144dc21f99c9e4a5e3662b19ca6a38eeb6c709a531e9f4dfa8c97e9576cb9a5"
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.clock.Advance(273 * 24 * time.Hour) // 30 November 2026, 15:00 UTC
		if _, err := seed.Seed(ctx, e.store, seed.Options{Patients: 600, PatientsPerPharmacy: 600, PharmacistsPerPharmacy: 1,
			CaregiverEvery: 1 << 30, Now: e.clock.Now(), RandomSeed: 7}); err != nil {
			t.Fatal(err)
		}
		res, err := e.authClient().Login(ctx, req(&mtmv1.LoginRequest{Email: "rph0.0@load.test", Password: seed.Password}))
		if err != nil {
			t.Fatal(err)
		}
		care := e.careClient(res.Msg.GetTokens().GetAccessToken())
		// Read twice: the second pass finds the records in the store's
		// cache, shared with the first (store.Worklists), and must see
		// them as they were.
		pages := func() (string, map[string]int) {
			h := sha256.New()
			entries := map[string]int{}
			show := func(list string, m proto.Message, n int) {
				t.Helper()
				b, err := protojson.Marshal(m)
				if err != nil {
					t.Fatal(err)
				}
				var compact bytes.Buffer
				if err := json.Compact(&compact, b); err != nil { // protojson's spacing varies on purpose
					t.Fatal(err)
				}
				fmt.Fprintf(h, "%s %s\n", list, compact.Bytes())
				entries[list] += n
			}
			for token := ""; ; {
				res, err := care.ListPatientsDueForCmr(ctx, req(&mtmv1.ListPatientsDueForCmrRequest{PageSize: 25, PageToken: token}))
				if err != nil {
					t.Fatal(err)
				}
				show("cmr", res.Msg, len(res.Msg.GetPatients()))
				if token = res.Msg.GetNextPageToken(); token == "" {
					break
				}
			}
			for token := ""; ; {
				res, err := care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 25, PageToken: token}))
				if err != nil {
					t.Fatal(err)
				}
				show("below", res.Msg, len(res.Msg.GetPatients()))
				if token = res.Msg.GetNextPageToken(); token == "" {
					break
				}
			}
			for token := ""; ; {
				res, err := care.ListOverdueFollowUps(ctx, req(&mtmv1.ListOverdueFollowUpsRequest{PageSize: 25, PageToken: token}))
				if err != nil {
					t.Fatal(err)
				}
				show("followUps", res.Msg, len(res.Msg.GetFollowUps()))
				if token = res.Msg.GetNextPageToken(); token == "" {
					break
				}
			}
			return hex.EncodeToString(h.Sum(nil)), entries
		}
		got, entries := pages()
		if again, _ := pages(); again != got {
			t.Errorf("the second reading of the pages differs from the first")
		}
		// Every patient is due for a CMR (none had one), a quarter has an
		// overdue follow-up, and those of a quarter in a PQA class are below.
		if entries["cmr"] != 600 || entries["followUps"] != 150 || entries["below"] < 50 || entries["below"] > 150 {
			t.Fatalf("entries per list = %v", entries)
		}
		if got != want {
			t.Errorf("digest of the pages = %s, want %s", got, want)
		}
	})
}

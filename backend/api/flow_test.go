package api_test

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestMedicationListAndPlanEndToEnd is the foundation's user story: a
// pharmacist enrolls a patient and keeps their PML and MAP; the patient
// activates the app, reads both and records what they did.
func TestMedicationListAndPlanEndToEnd(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Margaret")
		care := e.careClient(rph)

		// The stopped medicine was added first: the PML must still list the
		// current one first (the storage order alone would not).
		old, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pt.id, Medication: &mtmv1.MedicationFields{
			Name: "Omeprazole", Strength: "20 mg", HowIUseIt: "1 capsule before breakfast"}}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.StopMedication(ctx, connect.NewRequest(&mtmv1.StopMedicationRequest{PatientId: pt.id, MedicationId: old.Msg.GetMedication().GetId(),
			ExpectedVersion: 1, StoppedOn: "2026-03-01", WhyStopped: "Heartburn resolved"})); err != nil {
			t.Fatal(err)
		}
		add, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pt.id, Medication: &mtmv1.MedicationFields{
			Name: "Apixaban", Strength: "5 mg", Rxcui: "1364445", HowIUseIt: "1 tablet twice a day", WhyIUseIt: "Prevent stroke",
			Prescriber: "Dr. Alvarez", StartedOn: "2025-09-10"}}))
		if err != nil {
			t.Fatal(err)
		}
		apixaban := add.Msg.GetMedication()
		changed, err := care.ChangeMedication(ctx, connect.NewRequest(&mtmv1.ChangeMedicationRequest{PatientId: pt.id, MedicationId: apixaban.GetId(),
			ExpectedVersion: apixaban.GetVersion(), Reason: "Dose reduced: age and kidney function", Medication: &mtmv1.MedicationFields{
				Name: "Apixaban", Strength: "2.5 mg", HowIUseIt: "1 tablet twice a day", WhyIUseIt: "Prevent stroke", StartedOn: "2025-09-10"}}))
		if err != nil {
			t.Fatal(err)
		}
		if changed.Msg.GetMedication().GetStrength() != "2.5 mg" || changed.Msg.GetMedication().GetVersion() != 2 {
			t.Fatalf("changed medication = %v", changed.Msg.GetMedication())
		}
		if _, err := care.AddAllergy(ctx, connect.NewRequest(&mtmv1.AddAllergyRequest{PatientId: pt.id, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: "Penicillin", Reaction: "Hives"})); err != nil {
			t.Fatal(err)
		}
		fill, err := care.RecordFill(ctx, connect.NewRequest(&mtmv1.RecordFillRequest{PatientId: pt.id, MedicationId: apixaban.GetId(), FilledOn: "2026-02-01", DaysSupply: 30}))
		if err != nil {
			t.Fatal(err)
		}
		if got := fill.Msg.GetSupplyRunsThrough(); got != "2026-03-02" {
			t.Fatalf("supply runs through %s, want 2026-03-02", got)
		}
		early, err := care.RecordFill(ctx, connect.NewRequest(&mtmv1.RecordFillRequest{PatientId: pt.id, MedicationId: apixaban.GetId(), FilledOn: "2026-02-25", DaysSupply: 30}))
		if err != nil {
			t.Fatal(err)
		}
		if got := early.Msg.GetSupplyRunsThrough(); got != "2026-04-01" {
			t.Fatalf("early refill: supply runs through %s, want 2026-04-01 (carried forward)", got)
		}
		item, err := care.AddActionItem(ctx, connect.NewRequest(&mtmv1.AddActionItemRequest{PatientId: pt.id,
			WhatWeTalkedAbout: "Bleeding risk with NSAIDs", WhatINeedToDo: "Use acetaminophen for pain"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.SetActionPlanNotes(ctx, connect.NewRequest(&mtmv1.SetActionPlanNotesRequest{PatientId: pt.id,
			FollowUpPlan: "Call in 4 weeks", Questions: "Can I take calcium at lunch?"})); err != nil {
			t.Fatal(err)
		}
		if _, err := care.SetOtherInformation(ctx, connect.NewRequest(&mtmv1.SetOtherInformationRequest{PatientId: pt.id, OtherInformation: "Uses a pill organizer"})); err != nil {
			t.Fatal(err)
		}

		// The patient reads the PML: current medicines first, stopped ones kept.
		patient := e.patientClient(pt.token)
		pml, err := patient.GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		meds := pml.Msg.GetMedicationList().GetMedications()
		if len(meds) != 2 || meds[0].GetName() != "Apixaban" || meds[0].GetStrength() != "2.5 mg" || meds[0].GetStoppedOn() != "" {
			t.Fatalf("PML medications = %v", meds)
		}
		if meds[1].GetName() != "Omeprazole" || meds[1].GetStoppedOn() != "2026-03-01" || meds[1].GetWhyStopped() != "Heartburn resolved" {
			t.Fatalf("stopped medicine not kept in history: %v", meds[1])
		}
		if a := pml.Msg.GetMedicationList().GetAllergies(); len(a) != 1 || a[0].GetSubstance() != "Penicillin" {
			t.Fatalf("allergies = %v", a)
		}
		if got := pml.Msg.GetMedicationList().GetOtherInformation(); got != "Uses a pill organizer" {
			t.Fatalf("other information = %q", got)
		}

		// The patient records what they did on the plan.
		prog, err := patient.RecordActionProgress(ctx, connect.NewRequest(&mtmv1.RecordActionProgressRequest{PatientId: pt.id,
			ActionItemId: item.Msg.GetActionItem().GetId(), WhatIDid: "Bought acetaminophen, threw out old ibuprofen", DoneOn: "2026-03-02"}))
		if err != nil {
			t.Fatal(err)
		}
		if len(prog.Msg.GetActionItem().GetProgress()) != 1 {
			t.Fatalf("progress not recorded: %v", prog.Msg.GetActionItem())
		}
		plan, err := patient.GetActionPlan(ctx, connect.NewRequest(&mtmv1.GetActionPlanRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if p := plan.Msg.GetActionPlan(); p.GetFollowUpPlan() != "Call in 4 weeks" || len(p.GetItems()) != 1 ||
			p.GetItems()[0].GetProgress()[0].GetDoneOn() != "2026-03-02" {
			t.Fatalf("action plan = %v", p)
		}

		// The pharmacist sees the patient's progress and finds the patient.
		rec, err := care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Msg.GetActionPlan().GetItems()[0].GetProgress()[0].GetWhatIDid(); got != "Bought acetaminophen, threw out old ibuprofen" {
			t.Fatalf("pharmacist sees progress %q", got)
		}
		found, err := care.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{NamePrefix: "marg"}))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(found.Msg.GetPatients(), func(p *mtmv1.Patient) bool { return p.GetId() == pt.id }) {
			t.Fatalf("search did not find the patient: %v", found.Msg.GetPatients())
		}
	})
}

// TestStaleWriteIsRefused: two pharmacists edit the same row; the second,
// based on the old version, gets aborted and changes nothing.
func TestStaleWriteIsRefused(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		care := e.careClient(rph)
		add, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pt.id, Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "twice a day"}}))
		if err != nil {
			t.Fatal(err)
		}
		change := func(strength string) error {
			_, err := care.ChangeMedication(ctx, connect.NewRequest(&mtmv1.ChangeMedicationRequest{PatientId: pt.id, MedicationId: add.Msg.GetMedication().GetId(),
				ExpectedVersion: 1, Reason: "dose change", Medication: &mtmv1.MedicationFields{Name: "Metformin", Strength: strength, HowIUseIt: "twice a day"}}))
			return err
		}
		if err := change("500 mg"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, change("1000 mg"), connect.CodeAborted)
		rec, err := care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if got := rec.Msg.GetMedicationList().GetMedications()[0].GetStrength(); got != "500 mg" {
			t.Fatalf("strength = %q after a stale write, want 500 mg", got)
		}
	})
}

package api_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestCachedPMLFollowsOtherInstances: instance A keeps the PML (and plan)
// answers it built; what instance B (or a store-level writer that leaves the record's
// timestamps alone) changes is what A answers next, a caregiver B revoked
// is refused by A, and a patient erased on B is gone on A. Every read,
// cached or not, is audited.
func TestCachedPMLFollowsOtherInstances(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, base *env) {
		a, b := redisPair(t, base, time.Hour)
		ctx := context.Background()
		admin := a.pharmacy("ph_1", "admin@one.test")
		pt := a.enroll(admin, "Pat")
		cg := a.caregiver(pt, "cg@one.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
		read := func(e *env, token string, known int64) (*mtmv1.GetMedicationListResponse, error) {
			t.Helper()
			res, err := e.patientClient(token).GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id, KnownVersion: known}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		names := func(m *mtmv1.GetMedicationListResponse) []string {
			var out []string
			for _, med := range m.GetMedicationList().GetMedications() {
				out = append(out, med.GetName())
			}
			return out
		}
		mustRead := func(e *env, token string, want ...string) *mtmv1.GetMedicationListResponse {
			t.Helper()
			m, err := read(e, token, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(m); !slices.Equal(got, want) {
				t.Fatalf("PML read %q, want %q (a stale cached answer)", got, want)
			}
			return m
		}
		add := func(name string) {
			t.Helper()
			if _, err := b.careClient(admin).AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
				Medication: &mtmv1.MedicationFields{Name: name, HowIUseIt: "one a day", WhyIUseIt: "blood pressure"}})); err != nil {
				t.Fatal(err)
			}
		}
		audited := func() int {
			n := 0
			for _, ev := range a.archive.all() {
				if ev.Procedure == mtmv1connect.PatientServiceGetMedicationListProcedure && ev.PatientID == pt.id && ev.Code == "ok" {
					n++
				}
			}
			return n
		}

		add("Lisinopril")
		mustRead(a, pt.token, "Lisinopril")
		mustRead(a, cg.token, "Lisinopril")
		first := mustRead(a, pt.token, "Lisinopril") // from A's cache
		add("Amlodipine")
		second := mustRead(a, pt.token, "Lisinopril", "Amlodipine")
		mustRead(a, cg.token, "Lisinopril", "Amlodipine")
		// A conditional read with the old version gets the new list; with
		// the new one, not_modified.
		if m, err := read(a, pt.token, first.GetSyncVersion()); err != nil || m.GetNotModified() || len(names(m)) != 2 {
			t.Fatalf("conditional read at the old version: %v, %v", m, err)
		}
		if m, err := read(a, pt.token, second.GetSyncVersion()); err != nil || !m.GetNotModified() || m.GetMedicationList() != nil {
			t.Fatalf("conditional read at the current version: %v, %v", m, err)
		}
		// A writer below the API (no new timestamps): A still sees it.
		if _, err := b.store.UpdatePatient(ctx, pt.id, func(p store.Patient) (store.Patient, error) {
			p.Medications[1].Strength = "5 mg"
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		m := mustRead(a, pt.token, "Lisinopril", "Amlodipine")
		if got := m.GetMedicationList().GetMedications()[1].GetStrength(); got != "5 mg" {
			t.Fatalf("strength %q after a store-level change on B, want 5 mg (a stale cached answer)", got)
		}
		// The plan as well: A answers what B wrote.
		plan := func() []string {
			t.Helper()
			res, err := a.patientClient(pt.token).GetActionPlan(ctx, req(&mtmv1.GetActionPlanRequest{PatientId: pt.id}))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, it := range res.Msg.GetActionPlan().GetItems() {
				out = append(out, it.GetWhatINeedToDo())
			}
			return out
		}
		for i, todo := range []string{"Walk daily", "Check blood pressure"} {
			if _, err := b.careClient(admin).AddActionItem(ctx, req(&mtmv1.AddActionItemRequest{PatientId: pt.id,
				WhatWeTalkedAbout: "Blood pressure", WhatINeedToDo: todo})); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if got := plan(); len(got) != i+1 || got[i] != todo {
					t.Fatalf("plan read %q after B added %q (a stale cached answer)", got, todo)
				}
			}
		}
		if n := audited(); n != 8 {
			t.Errorf("%d audited PML reads on A, want 8 (one per read, cached or not)", n)
		}

		// The patient revokes the caregiver on B: A refuses the caregiver.
		if _, err := b.patientClient(pt.token).RevokeCaregiver(ctx, req(&mtmv1.RevokeCaregiverRequest{PatientId: pt.id, GrantId: cg.grant})); err != nil {
			t.Fatal(err)
		}
		_, err := read(a, cg.token, 0)
		wantCode(t, err, connect.CodeNotFound)
		mustRead(a, pt.token, "Lisinopril", "Amlodipine")

		// The admin erases the patient on B: A has nothing to give out.
		if _, err := b.careClient(admin).DeletePatient(ctx, req(&mtmv1.DeletePatientRequest{PatientId: pt.id, ConfirmFamilyName: "Tester"})); err != nil {
			t.Fatal(err)
		}
		_, err = read(a, pt.token, 0)
		wantCode(t, err, connect.CodeNotFound)
	})
}

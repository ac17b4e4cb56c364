package api_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// An app that holds the current version of a part gets not_modified and no
// record; any change to that part (and only to it) makes it read again.
func TestConditionalReads(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_sync", "rph@sync.test")
		pt := e.enroll(rph, "Ada")
		other := e.enroll(rph, "Bea")
		me, care := e.patientClient(pt.token), e.careClient(rph)

		pml, err := me.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		v1 := pml.Msg.GetSyncVersion()
		if v1 == 0 || pml.Msg.GetNotModified() || pml.Msg.GetMedicationList() == nil {
			t.Fatalf("first read: version %d, not_modified %v, list %v", v1, pml.Msg.GetNotModified(), pml.Msg.GetMedicationList())
		}
		prof, err := me.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		plan, err := me.GetActionPlan(ctx, req(&mtmv1.GetActionPlanRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}

		// An unrelated edit (the patient's preferences) leaves the PML
		// and the plan unmodified, and changes the profile.
		if _, err := me.UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, TimeZone: "America/Denver"})); err != nil {
			t.Fatal(err)
		}
		pml, err = me.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id, KnownVersion: v1}))
		if err != nil {
			t.Fatal(err)
		}
		if !pml.Msg.GetNotModified() || pml.Msg.GetMedicationList() != nil || pml.Msg.GetSyncVersion() != v1 {
			t.Fatalf("PML after a preference change: not_modified %v, list %v, version %d (want %d)", pml.Msg.GetNotModified(), pml.Msg.GetMedicationList(), pml.Msg.GetSyncVersion(), v1)
		}
		plan2, err := me.GetActionPlan(ctx, req(&mtmv1.GetActionPlanRequest{PatientId: pt.id, KnownVersion: plan.Msg.GetSyncVersion()}))
		if err != nil || !plan2.Msg.GetNotModified() {
			t.Fatalf("plan after a preference change: %v, not_modified %v", err, plan2.Msg.GetNotModified())
		}
		prof2, err := me.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: pt.id, KnownVersion: prof.Msg.GetSyncVersion()}))
		if err != nil {
			t.Fatal(err)
		}
		if prof2.Msg.GetNotModified() || prof2.Msg.GetPatient().GetTimeZone() != "America/Denver" {
			t.Fatalf("profile after a preference change: not_modified %v, time zone %q", prof2.Msg.GetNotModified(), prof2.Msg.GetPatient().GetTimeZone())
		}

		// The pharmacist adds a medicine: the PML is modified.
		if _, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
			Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "1 tablet with breakfast"}})); err != nil {
			t.Fatal(err)
		}
		pml, err = me.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id, KnownVersion: v1}))
		if err != nil {
			t.Fatal(err)
		}
		if pml.Msg.GetNotModified() || len(pml.Msg.GetMedicationList().GetMedications()) != 1 || pml.Msg.GetSyncVersion() == v1 {
			t.Fatalf("PML after AddMedication: not_modified %v, %d medicines, version %d", pml.Msg.GetNotModified(), len(pml.Msg.GetMedicationList().GetMedications()), pml.Msg.GetSyncVersion())
		}

		// Another patient's version tells nothing: not_found, as always.
		_, err = e.patientClient(other.token).GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id, KnownVersion: pml.Msg.GetSyncVersion()}))
		wantCode(t, err, connect.CodeNotFound)
		// A caregiver without the plan scope cannot learn whether the plan changed.
		cg := e.caregiver(pt, "meds@sync.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
		_, err = e.patientClient(cg.token).GetActionPlan(ctx, req(&mtmv1.GetActionPlanRequest{PatientId: pt.id, KnownVersion: plan.Msg.GetSyncVersion()}))
		wantCode(t, err, connect.CodeNotFound)
		cpml, err := e.patientClient(cg.token).GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id, KnownVersion: pml.Msg.GetSyncVersion()}))
		if err != nil || !cpml.Msg.GetNotModified() {
			t.Fatalf("caregiver's conditional PML read: %v, not_modified %v", err, cpml.Msg.GetNotModified())
		}
	})
}

// An app that was offline catches up with GetChanges: each changed item
// once, as it is now; a caregiver sees only what their scopes cover; a
// cursor the server no longer covers asks for a reload.
func TestChangesFeed(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_feed", "rph@feed.test")
		pt := e.enroll(rph, "Ada")
		me, care := e.patientClient(pt.token), e.careClient(rph)
		cg := e.caregiver(pt, "meds@feed.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})

		first, err := me.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if !first.Msg.GetReloadRequired() || first.Msg.GetNextCursor() == "" {
			t.Fatalf("first call: reload %v, cursor %q", first.Msg.GetReloadRequired(), first.Msg.GetNextCursor())
		}
		c0 := first.Msg.GetNextCursor()

		// Offline: the pharmacist adds and edits a medicine and a plan item,
		// the patient writes to the pharmacy.
		med, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
			Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "1 tablet with breakfast"}}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.AddActionItem(ctx, req(&mtmv1.AddActionItemRequest{PatientId: pt.id, WhatWeTalkedAbout: "Blood sugar", WhatINeedToDo: "Log it daily"})); err != nil {
			t.Fatal(err)
		}
		if _, err := e.msgClient(pt.token).StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: pt.id, Subject: "Refill", ClientMessageId: "cm_feed_00001", Body: "Can I get a refill?"})); err != nil {
			t.Fatal(err)
		}

		got, err := me.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id, Cursor: c0}))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]*mtmv1.RecordChange{}
		for _, c := range got.Msg.GetChanges() {
			kinds[c.GetKind()] = c
		}
		if m := kinds["medication"].GetMedication(); m.GetName() != "Metformin" || m.GetId() != med.Msg.GetMedication().GetId() {
			t.Fatalf("feed's medication = %v, want Metformin", m)
		}
		if kinds["action_item"].GetActionItem().GetWhatINeedToDo() != "Log it daily" || kinds["thread"].GetThread().GetSubject() != "Refill" {
			t.Fatalf("feed = %v, want the plan item and the thread", got.Msg.GetChanges())
		}
		if got.Msg.GetReloadRequired() || got.Msg.GetHasMore() {
			t.Fatalf("reload %v, has_more %v", got.Msg.GetReloadRequired(), got.Msg.GetHasMore())
		}
		// The versions it hands out make the conditional reads answer not_modified.
		pml, err := me.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id, KnownVersion: got.Msg.GetVersions().GetMedicationList()}))
		if err != nil || !pml.Msg.GetNotModified() {
			t.Fatalf("PML read with the feed's version: %v, not_modified %v", err, pml.Msg.GetNotModified())
		}
		c1 := got.Msg.GetNextCursor()
		again, err := me.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id, Cursor: c1}))
		if err != nil || len(again.Msg.GetChanges()) != 0 || again.Msg.GetNextCursor() != c1 {
			t.Fatalf("nothing new: %v, %d changes, cursor %q (want %q)", err, len(again.Msg.GetChanges()), again.Msg.GetNextCursor(), c1)
		}

		// A removal comes as removed, without the item.
		alg, err := care.AddAllergy(ctx, req(&mtmv1.AddAllergyRequest{PatientId: pt.id, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: "Penicillin"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.RemoveAllergy(ctx, req(&mtmv1.RemoveAllergyRequest{PatientId: pt.id, AllergyId: alg.Msg.GetAllergy().GetId()})); err != nil {
			t.Fatal(err)
		}
		gone, err := me.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id, Cursor: c1}))
		if err != nil {
			t.Fatal(err)
		}
		if ch := gone.Msg.GetChanges(); len(ch) != 1 || ch[0].GetKind() != "allergy" || !ch[0].GetRemoved() || ch[0].GetAllergy() != nil || ch[0].GetId() != alg.Msg.GetAllergy().GetId() {
			t.Fatalf("after adding and removing an allergy the feed says %v, want one removal", ch)
		}
		c1 = gone.Msg.GetNextCursor()

		// Pages.
		page, err := me.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id, Cursor: c0, PageSize: 1}))
		if err != nil || !page.Msg.GetHasMore() || len(page.Msg.GetChanges()) != 1 {
			t.Fatalf("page of 1: %v, has_more %v, %d changes", err, page.Msg.GetHasMore(), len(page.Msg.GetChanges()))
		}

		// The caregiver without the message and plan scopes sees the medicine only.
		theirs, err := e.patientClient(cg.token).GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id, Cursor: c0}))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range theirs.Msg.GetChanges() {
			if c.GetKind() == "thread" || c.GetKind() == "action_item" {
				t.Fatalf("caregiver with view_medicines only sees a %s change: %v", c.GetKind(), c)
			}
		}
		if len(theirs.Msg.GetChanges()) == 0 {
			t.Fatal("caregiver with view_medicines sees no change at all")
		}

		// Too old (trimmed) or foreign cursors ask for a reload.
		if _, err := e.store.UpdatePatient(ctx, pt.id, func(p store.Patient) (store.Patient, error) {
			for i := range store.ChangeLogKeep + 1 {
				p.Allergies = append(p.Allergies, store.Allergy{ID: fmt.Sprintf("alg_%04d", i), Kind: store.KindAllergy, Substance: "latex"})
			}
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, cur := range []string{c1, "999999999"} {
			old, err := me.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: pt.id, Cursor: cur}))
			if err != nil {
				t.Fatal(err)
			}
			if !old.Msg.GetReloadRequired() || len(old.Msg.GetChanges()) != 0 {
				t.Fatalf("cursor %s: reload %v with %d changes, want a reload", cur, old.Msg.GetReloadRequired(), len(old.Msg.GetChanges()))
			}
			if n, _ := strconv.Atoi(old.Msg.GetNextCursor()); n <= 0 {
				t.Fatalf("reload's cursor %q", old.Msg.GetNextCursor())
			}
		}
	})
}

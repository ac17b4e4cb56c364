package api_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestCaregiverGrantLifecycle: a daughter gets access to her father's
// medicines, loses it the moment he revokes it, and a grant with an end
// date stops by itself.
func TestCaregiverGrantLifecycle(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		father := e.enroll(rph, "Walter")
		mother := e.enroll(rph, "Ruth")
		daughter := e.caregiver(father, "daughter@family.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})

		// The same caregiver accepts a second patient's invite: a family.
		inv, err := e.patientClient(mother.token).InviteCaregiver(ctx, req(&mtmv1.InviteCaregiverRequest{PatientId: mother.id,
			Scopes: []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES}, EndsOn: "2026-03-10"}))
		if err != nil {
			t.Fatal(err)
		}
		cg := e.patientClient(daughter.token)
		if _, err := cg.AcceptCaregiverInvite(ctx, req(&mtmv1.AcceptCaregiverInviteRequest{InviteCode: inv.Msg.GetInviteCode()})); err != nil {
			t.Fatal(err)
		}
		_, err = cg.AcceptCaregiverInvite(ctx, req(&mtmv1.AcceptCaregiverInviteRequest{InviteCode: inv.Msg.GetInviteCode()}))
		wantCode(t, err, connect.CodeNotFound) // invites are single use

		read := func(patientID string) error {
			_, err := cg.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: patientID}))
			return err
		}
		for _, id := range []string{father.id, mother.id} {
			if err := read(id); err != nil {
				t.Fatalf("caregiver reading patient %s: %v", id, err)
			}
		}
		// No plan scope: the action plan stays closed.
		_, err = cg.GetActionPlan(ctx, req(&mtmv1.GetActionPlanRequest{PatientId: father.id}))
		wantCode(t, err, connect.CodeNotFound)

		// The pharmacist sees who holds access.
		list, err := e.patientClient(rph).ListCaregivers(ctx, req(&mtmv1.ListCaregiversRequest{PatientId: father.id}))
		if err != nil {
			t.Fatal(err)
		}
		if g := list.Msg.GetGrants(); len(g) != 1 || g[0].GetCaregiverId() != daughter.id || g[0].GetRevokedAt() != nil {
			t.Fatalf("grants = %v", g)
		}

		// Revocation takes effect on the very next call, with the same token.
		if _, err := e.patientClient(father.token).RevokeCaregiver(ctx, req(&mtmv1.RevokeCaregiverRequest{PatientId: father.id, GrantId: daughter.grant})); err != nil {
			t.Fatal(err)
		}
		wantCode(t, read(father.id), connect.CodeNotFound)
		if err := read(mother.id); err != nil {
			t.Fatalf("revoking one patient's grant affected another's: %v", err)
		}

		// Past its end date the mother's grant stops.
		e.clock.Advance(10 * 24 * time.Hour)
		fresh := e.login("daughter@family.test", "caregiver password 1")
		_, err = e.patientClient(fresh).GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: mother.id}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

// TestWhoAccessedMyRecord: every access to a patient's data, allowed or
// denied, shows in the patient's report and the archive; probes of ids
// that do not exist reach only the archive.
func TestWhoAccessedMyRecord(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		far := e.pharmacy("ph_b", "rph@b.test")
		pt := e.enroll(rph, "Ann")

		if _, err := e.careClient(rph).GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: pt.id})); err != nil {
			t.Fatal(err)
		}
		_, err := e.careClient(far).GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: pt.id}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = e.careClient(far).GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: "pt_nobody"}))
		wantCode(t, err, connect.CodeNotFound)

		res, err := e.patientClient(pt.token).ListAccessEvents(ctx, req(&mtmv1.ListAccessEventsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		var sawOwn, sawDenied bool
		for _, ev := range res.Msg.GetEvents() {
			if ev.GetProcedure() == mtmv1connect.CareServiceGetPatientRecordProcedure {
				switch {
				case ev.GetActorId() == "ac_ph_a" && ev.GetAllowed() && ev.GetActorName() == "RPh ph_a":
					sawOwn = true
				case ev.GetActorId() == "ac_ph_b" && !ev.GetAllowed():
					sawDenied = true
				}
			}
		}
		if !sawOwn || !sawDenied {
			t.Fatalf("report lacks the pharmacist's read (%v) or the denied attempt (%v): %v", sawOwn, sawDenied, res.Msg.GetEvents())
		}
		// Newest first, and the listing itself was recorded after it answered.
		events := res.Msg.GetEvents()
		for i := 1; i < len(events); i++ {
			if events[i].GetTime().AsTime().After(events[i-1].GetTime().AsTime()) {
				t.Fatalf("events not newest first at %d", i)
			}
		}
		var probe bool
		for _, ev := range e.archive.all() {
			if ev.PatientID == "pt_nobody" && !ev.Allowed {
				probe = true
			}
		}
		if !probe {
			t.Fatal("the archive lacks the probe of a nonexistent patient")
		}
		if evs, err := e.store.ListAuditEvents(ctx, "pt_nobody", "", 10); err != nil || len(evs) != 0 {
			t.Fatalf("a nonexistent patient got a store window: %v %v", evs, err)
		}
		// A caregiver cannot read the report; the patient's pharmacist can.
		if _, err := e.patientClient(rph).ListAccessEvents(ctx, req(&mtmv1.ListAccessEventsRequest{PatientId: pt.id})); err != nil {
			t.Fatalf("pharmacist reading the report: %v", err)
		}
	})
}

package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestAnotherPatientLooksMissing: neither a patient nor a pharmacist of
// another pharmacy can tell another patient's record from one that does
// not exist, and nothing is changed.
func TestAnotherPatientLooksMissing(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rphA := e.pharmacy("ph_a", "rph@a.test")
		rphB := e.pharmacy("ph_b", "rph@b.test")
		alice := e.enroll(rphA, "Alice")
		bob := e.enroll(rphA, "Bob")
		const missing = "pt_doesnotexist"

		for _, target := range []string{bob.id, missing} {
			_, err := e.patientClient(alice.token).GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: target}))
			ce := wantCode(t, err, connect.CodeNotFound)
			if ce.Message() != "patient not found" {
				t.Fatalf("message %q reveals more than not-found", ce.Message())
			}
			_, err = e.patientClient(alice.token).RecordActionProgress(ctx, connect.NewRequest(&mtmv1.RecordActionProgressRequest{
				PatientId: target, ActionItemId: "ai_x", WhatIDid: "x", DoneOn: "2026-03-01"}))
			wantCode(t, err, connect.CodeNotFound)
		}
		for _, target := range []string{alice.id, missing} {
			_, err := e.careClient(rphB).GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: target}))
			if ce := wantCode(t, err, connect.CodeNotFound); ce.Message() != "patient not found" {
				t.Fatalf("message %q", ce.Message())
			}
			_, err = e.careClient(rphB).AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: target,
				Medication: &mtmv1.MedicationFields{Name: "Warfarin", HowIUseIt: "daily"}}))
			wantCode(t, err, connect.CodeNotFound)
		}
		// Pharmacy B's search does not list pharmacy A's patients.
		res, err := e.careClient(rphB).SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.Msg.GetPatients()); n != 0 {
			t.Fatalf("pharmacy B sees %d patients of pharmacy A", n)
		}
		// Nothing was written to Alice's record.
		pt, err := e.store.GetPatient(ctx, alice.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt.Medications) != 0 {
			t.Fatalf("another pharmacy's write landed: %v", pt.Medications)
		}
		// Patients cannot use the pharmacist API, and pharmacists not the patient one.
		_, err = e.careClient(alice.token).GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: alice.id}))
		wantCode(t, err, connect.CodePermissionDenied)
		_, err = e.patientClient(rphA).GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: alice.id}))
		wantCode(t, err, connect.CodePermissionDenied)
		// Anonymous callers get unauthenticated.
		_, err = e.patientClient("").GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: alice.id}))
		wantCode(t, err, connect.CodeUnauthenticated)
	})
}

// TestBadTokensAreRefused: expired tokens, tokens for another audience and
// tokens signed with a key this server does not hold are unauthenticated.
func TestBadTokensAreRefused(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Alice")
		call := func(token string) error {
			_, err := e.patientClient(token).GetProfile(ctx, connect.NewRequest(&mtmv1.GetProfileRequest{PatientId: pt.id}))
			return err
		}
		if err := call(pt.token); err != nil {
			t.Fatalf("valid token refused: %v", err)
		}
		otherAudience, err := auth.NewTokens(e.keys, auth.TokenConfig{Issuer: testIssuer, Audience: "another-api", AccessTTL: time.Minute, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := otherAudience.IssueAccess(auth.Principal{Subject: pt.id, Role: store.RolePatient, SessionID: "sf_x"})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, call(tok), connect.CodeUnauthenticated)

		foreignKeys, err := auth.LoadOrCreateKeySet(t.TempDir(), e.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := auth.NewTokens(foreignKeys, auth.TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: time.Minute, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err = foreign.IssueAccess(auth.Principal{Subject: pt.id, Role: store.RolePatient, SessionID: "sf_x"})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, call(tok), connect.CodeUnauthenticated)
		wantCode(t, call("not-a-jwt"), connect.CodeUnauthenticated)

		e.clock.Advance(16 * time.Minute)
		wantCode(t, call(pt.token), connect.CodeUnauthenticated)
	})
}

// TestActivation covers the one-time code: wrong birth date, single use,
// expiry and throttling of repeated wrong attempts.
func TestActivation(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		enroll := func(given string) (string, string) {
			res, err := e.careClient(rph).EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{
				GivenName: given, FamilyName: "T", DateOfBirth: "1950-06-01", TimeZone: "Europe/Berlin"}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetPatient().GetId(), res.Msg.GetActivationCode()
		}
		activate := func(code, dob string) (*connect.Response[mtmv1.ActivatePatientResponse], error) {
			return e.authClient().ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: code, DateOfBirth: dob, DeviceName: "phone"}))
		}

		id, code := enroll("Ann")
		_, err := activate(code, "1950-06-02")
		wantCode(t, err, connect.CodeUnauthenticated)
		// Typed in lower case with spaces: still the same code.
		res, err := activate(strings.ToLower(strings.ReplaceAll(code, "-", " ")), "1950-06-01")
		if err != nil {
			t.Fatalf("activation with the right code and birth date: %v", err)
		}
		if res.Msg.GetPatientId() != id {
			t.Fatalf("activated %s, want %s", res.Msg.GetPatientId(), id)
		}
		_, err = activate(code, "1950-06-01")
		wantCode(t, err, connect.CodeUnauthenticated) // single use

		_, code = enroll("Cy")
		var last error
		for range 6 {
			_, last = activate(code, "1999-01-01")
		}
		wantCode(t, last, connect.CodeResourceExhausted)
		_, err = activate(code, "1950-06-01")
		wantCode(t, err, connect.CodeResourceExhausted) // the code is locked for the window

		_, code = enroll("Ben")
		e.clock.Advance(73 * time.Hour)
		_, err = activate(code, "1950-06-01")
		wantCode(t, err, connect.CodeUnauthenticated) // expired
	})
}

// TestRefreshRotation: a refresh token works once; presenting the spent one
// again revokes the whole sign-in, including the newest token.
func TestRefreshRotation(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		refresh := func(tok string) (*connect.Response[mtmv1.RefreshResponse], error) {
			return e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: tok}))
		}
		first, err := refresh(pt.refresh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.patientClient(first.Msg.GetTokens().GetAccessToken()).GetProfile(ctx, connect.NewRequest(&mtmv1.GetProfileRequest{PatientId: pt.id})); err != nil {
			t.Fatalf("refreshed access token refused: %v", err)
		}
		e.clock.Advance(api.DefaultRefreshGrace + time.Second)
		_, err = refresh(pt.refresh)
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSessionRevoked)
		_, err = refresh(first.Msg.GetTokens().GetRefreshToken())
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSessionRevoked) // family revoked by the reuse

		// Logout ends a sign-in.
		act := e.enroll(rph, "Bo")
		if _, err := e.authClient().Logout(ctx, connect.NewRequest(&mtmv1.LogoutRequest{RefreshToken: act.refresh})); err != nil {
			t.Fatal(err)
		}
		_, err = refresh(act.refresh)
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSessionRevoked)
		_, err = refresh("never-issued")
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonInvalidCredentials)
	})
}

// TestLogin covers wrong passwords and their throttling.
func TestLogin(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.pharmacy("ph_a", "rph@a.test")
		login := func(email, pw string) error {
			_, err := e.authClient().Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: email, Password: pw}))
			return err
		}
		if err := login("RPH@A.test ", "correct horse battery"); err != nil {
			// Validation refuses the trailing space before normalization; that is fine too.
			wantCode(t, err, connect.CodeInvalidArgument)
		}
		ce := wantCode(t, login("rph@a.test", "wrong password"), connect.CodeUnauthenticated)
		ce2 := wantCode(t, login("nobody@a.test", "wrong password"), connect.CodeUnauthenticated)
		if ce.Message() != ce2.Message() {
			t.Fatalf("unknown account and wrong password answer differently: %q vs %q", ce.Message(), ce2.Message())
		}
		var last error
		for range 10 {
			last = login("rph@a.test", "wrong password")
		}
		ce = wantCode(t, last, connect.CodeResourceExhausted)
		if ce.Meta().Get("Retry-After") == "" {
			t.Fatal("throttled answer carries no Retry-After")
		}
	})
}

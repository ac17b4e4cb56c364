package api_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/auth"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// staleVersionOf fails the test unless err is aborted with reason
// STALE_VERSION, and returns the current version it reports.
func staleVersionOf(t *testing.T, err error) int64 {
	t.Helper()
	ce := wantCode(t, err, connect.CodeAborted)
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if info, ok := v.(*errdetails.ErrorInfo); derr == nil && ok && info.GetDomain() == api.ErrorDomain && info.GetReason() == api.ReasonStaleVersion {
			n, perr := strconv.ParseInt(info.GetMetadata()["current_version"], 10, 64)
			if perr != nil {
				t.Fatalf("current_version %q: %v", info.GetMetadata()["current_version"], perr)
			}
			return n
		}
	}
	t.Fatalf("aborted without reason %s: %v", api.ReasonStaleVersion, ce)
	return 0
}

// TestUnrelatedEditsNeverConflict: the patient read their profile, a
// pharmacist then added a medicine; the patient's preferences change based
// on what they read goes through. A change based on a profile that really
// changed is refused with STALE_VERSION and the current version, which
// the app uses to retry. The same holds for a PML row.
func TestUnrelatedEditsNeverConflict(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		me, care := e.patientClient(pt.token), e.careClient(rph)
		prof, err := me.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		read := prof.Msg.GetPatient().GetVersion()

		med, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
			Medication: &mtmv1.MedicationFields{Name: "Lisinopril", HowIUseIt: "1 tablet daily"}}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.AddAllergy(ctx, req(&mtmv1.AddAllergyRequest{PatientId: pt.id, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: "Penicillin", Reaction: "rash"})); err != nil {
			t.Fatal(err)
		}
		up, err := me.UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, TimeZone: "America/Denver", ExpectedVersion: read}))
		if err != nil {
			t.Fatalf("preferences change after an unrelated PML edit: %v", err)
		}
		if got := up.Msg.GetPatient().GetVersion(); got != read+1 {
			t.Fatalf("profile version after the change = %d, want %d", got, read+1)
		}

		// A second phone still holding the old profile version conflicts
		// for real, and learns the current version.
		_, err = me.UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, TimeZone: "America/Chicago", ExpectedVersion: read}))
		if cur := staleVersionOf(t, err); cur != read+1 {
			t.Fatalf("STALE_VERSION reports %d, want %d", cur, read+1)
		}
		now, err := me.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if now.Msg.GetPatient().GetTimeZone() != "America/Denver" {
			t.Fatalf("refused change was written: time zone %q", now.Msg.GetPatient().GetTimeZone())
		}

		// PML rows: a change to another row or to the profile does not
		// touch this row's version; a stale one names the row's current one.
		row := med.Msg.GetMedication()
		if _, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
			Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "twice a day"}})); err != nil {
			t.Fatal(err)
		}
		changed, err := care.ChangeMedication(ctx, req(&mtmv1.ChangeMedicationRequest{PatientId: pt.id, MedicationId: row.GetId(), ExpectedVersion: row.GetVersion(),
			Reason: "dose", Medication: &mtmv1.MedicationFields{Name: "Lisinopril", Strength: "20 mg", HowIUseIt: "1 tablet daily"}}))
		if err != nil {
			t.Fatalf("row change after other edits: %v", err)
		}
		_, err = care.ChangeMedication(ctx, req(&mtmv1.ChangeMedicationRequest{PatientId: pt.id, MedicationId: row.GetId(), ExpectedVersion: row.GetVersion(),
			Reason: "dose", Medication: &mtmv1.MedicationFields{Name: "Lisinopril", Strength: "40 mg", HowIUseIt: "1 tablet daily"}}))
		if cur := staleVersionOf(t, err); cur != changed.Msg.GetMedication().GetVersion() {
			t.Fatalf("STALE_VERSION reports %d, want %d", cur, changed.Msg.GetMedication().GetVersion())
		}
	})
}

// TestWatchEndsWhenTheTokenExpires: a WatchThread opened with an access
// token ends with unauthenticated, reason TOKEN_EXPIRED, when the token
// expires, not before; the app refreshes and resumes from its cursor
// without losing the message sent in between.
func TestWatchEndsWhenTheTokenExpires(t *testing.T) {
	e := newEnv(t)
	rph := e.pharmacy("ph_a", "rph@a.test")
	pt := e.enroll(rph, "Ann")
	thread := startThread(t, e.msgClient(pt.token), pt.id, "cm_expiry_01", "hello").GetThread().GetId()

	const ttl = 2 * time.Second // exp is in whole seconds
	short, err := auth.NewTokens(e.keys, auth.TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: ttl, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.tokens.Verify(pt.token)
	if err != nil {
		t.Fatal(err)
	}
	shortToken, _, err := short.IssueAccess(p)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	w := watchThread(t, e.msgClient(shortToken), thread, 0)
	var cursor int64
	select {
	case m := <-w.msgs:
		cursor = m.GetSeq()
	case <-time.After(5 * time.Second):
		t.Fatal("no first message")
	}
	var ended error
	select {
	case ended = <-w.done:
	case <-time.After(ttl + 10*time.Second):
		t.Fatal("the stream outlived its access token")
	}
	if lived := time.Since(opened); lived < ttl-100*time.Millisecond {
		t.Fatalf("the stream ended after %v, before the token expired (%v)", lived, ttl)
	}
	var ce *connect.Error
	if !errors.As(ended, &ce) {
		t.Fatalf("stream ended with %v, want unauthenticated", ended)
	}
	if ce.Code() != connect.CodeUnauthenticated {
		t.Fatalf("stream ended with %v, want unauthenticated", ce)
	}
	wantReason(t, ce, api.ReasonTokenExpired)

	// Meanwhile the pharmacist replied; the app resumes with a fresh token.
	send(t, e.msgClient(rph), thread, "cm_expiry_02", "Yes, with food.")
	again := watchThread(t, e.msgClient(pt.token), thread, cursor)
	select {
	case m := <-again.msgs:
		if m.GetBody() != "Yes, with food." {
			t.Fatalf("resumed stream delivered %q first", m.GetBody())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the resumed stream did not deliver the reply")
	}
}

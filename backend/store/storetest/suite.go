package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// Run runs the conformance suite against the backend that newStore builds.
// Every subtest gets its own store from newStore, which must return an
// empty, open store and register its own cleanup (closing it, removing its
// files or keys) with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Pharmacy", pharmacyCases},
		{"Account", accountCases},
		{"Patient", patientCases},
		{"ListPatients", listCases},
		{"ActivationCode", activationCases},
		{"RefreshToken", refreshCases},
		{"RefreshGrace", graceCases},
		{"Allow", allowCases},
		{"ForgetAttempts", forgetCases},
		{"Caregivers", caregiverCases},
		{"AuditTrail", auditCases},
		{"Reminders", reminderCases},
		{"Messages", messagingCases},
		{"ChangeLog", changeCases},
		{"SigningKeys", signingKeyCases},
		{"ConsoleSessions", consoleCases},
		{"Worklists", worklistCases},
		{"Context", contextCases},
		{"AtRest", atRestCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newStore(t))
				})
			}
		})
	}
}

// testCase is one behaviour of the contract, run against a fresh store.
type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// wantErr fails the test unless err matches target (errors.Is).
func wantErr(t *testing.T, op string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", op, err, target)
	}
}

// must fails the test on a non-nil error.
func must(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

var contextCases = []testCase{
	{"CanceledContextWritesNothing", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		p := SamplePatient("pat-ctx", "ph-ctx", 1)
		if err := s.CreatePatient(ctx, p); err == nil {
			t.Fatal("CreatePatient with a canceled context: got nil error")
		}
		_, err := s.GetPatient(t.Context(), p.ID)
		wantErr(t, "GetPatient after canceled create", err, store.ErrNotFound)
		if _, err := s.GetPatient(ctx, p.ID); err == nil {
			t.Fatal("GetPatient with a canceled context: got nil error")
		}
	}},
}

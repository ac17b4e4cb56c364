package api_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestRefusalsCannotEraseTheAccessReport replays the attack of issue 11:
// another patient sends 1,100 GetProfile calls naming the victim. The
// attacker is throttled after the refusal budget, the victim's report keeps
// the pharmacist's real read although the refusals alone outnumber the
// window, and the victim's own failed call shows as failed, not denied.
func TestRefusalsCannotEraseTheAccessReport(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"bolt": func(t *testing.T) store.Store {
			st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"redis": func(t *testing.T) store.Store { return redisStore(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			const window = 20 // smaller than the refusal budget on purpose
			e := newEnvWith(t, open(t), envOptions{refusalLimit: audit.DefaultRefusalLimit, auditWindow: window})
			ctx := context.Background()
			rph := e.pharmacy("ph_a", "rph@a.test")
			victim := e.enroll(rph, "Victim")
			attacker := e.enroll(rph, "Mallory")

			if _, err := e.careClient(rph).GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: victim.id})); err != nil {
				t.Fatal(err)
			}
			// The victim's own stale write: aborted, and not a refusal.
			_, err := e.patientClient(victim.token).UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: victim.id,
				TimeZone: "America/Denver", ExpectedVersion: 999}))
			wantCode(t, err, connect.CodeAborted)

			codes := map[connect.Code]int{}
			var retryAfter string
			bad := e.patientClient(attacker.token)
			for range 1100 {
				_, err := bad.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: victim.id}))
				ce := new(connect.Error)
				if err == nil {
					t.Fatal("the attacker read the victim's profile")
				}
				ce = wantCodeIn(t, err, connect.CodeNotFound, connect.CodeResourceExhausted)
				codes[ce.Code()]++
				if ce.Code() == connect.CodeResourceExhausted {
					retryAfter = ce.Meta().Get("Retry-After")
				}
			}
			if codes[connect.CodeNotFound] != audit.DefaultRefusalLimit+1 || codes[connect.CodeResourceExhausted] != 1100-audit.DefaultRefusalLimit-1 {
				t.Fatalf("1,100 refused calls answered %v; want %d not_found (the budget, and the call that spends it) then resource_exhausted",
					codes, audit.DefaultRefusalLimit+1)
			}
			if s, err := strconv.Atoi(retryAfter); err != nil || s <= 0 || s > int(audit.DefaultRefusalWindow/time.Second)+1 {
				t.Fatalf("Retry-After = %q, want seconds until the window ends", retryAfter)
			}
			// Throttled callers are throttled everywhere, not just on the victim.
			_, err = bad.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: attacker.id}))
			wantCode(t, err, connect.CodeResourceExhausted)

			res, err := e.patientClient(victim.token).ListAccessEvents(ctx, req(&mtmv1.ListAccessEventsRequest{PatientId: victim.id, PageSize: 500}))
			if err != nil {
				t.Fatal(err)
			}
			byOutcome := map[mtmv1.AccessOutcome]int{}
			var pharmacistRead, ownFailure bool
			for _, ev := range res.Msg.GetEvents() {
				byOutcome[ev.GetOutcome()]++
				switch {
				case ev.GetActorId() == "ac_ph_a" && ev.GetProcedure() == mtmv1connect.CareServiceGetPatientRecordProcedure:
					pharmacistRead = ev.GetOutcome() == mtmv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED && ev.GetAllowed()
				case ev.GetActorId() == victim.id && ev.GetProcedure() == mtmv1connect.PatientServiceUpdatePreferencesProcedure:
					ownFailure = ev.GetOutcome() == mtmv1.AccessOutcome_ACCESS_OUTCOME_FAILED && ev.GetCode() == "aborted" && !ev.GetAllowed()
				case ev.GetOutcome() == mtmv1.AccessOutcome_ACCESS_OUTCOME_DENIED:
					if ev.GetActorId() != attacker.id || ev.GetCode() != "not_found" {
						t.Errorf("unexpected denied event %v", ev)
					}
				}
			}
			t.Logf("1,100 refused calls answered %v; the victim's report holds %d events: %v", codes, len(res.Msg.GetEvents()), byOutcome)
			if !pharmacistRead {
				t.Fatalf("the pharmacist's read was evicted from the report: %v", res.Msg.GetEvents())
			}
			if !ownFailure {
				t.Fatalf("the victim's own stale write is missing or not shown as failed/aborted: %v", res.Msg.GetEvents())
			}
			if byOutcome[mtmv1.AccessOutcome_ACCESS_OUTCOME_DENIED] != window || byOutcome[mtmv1.AccessOutcome_ACCESS_OUTCOME_THROTTLED] != 0 {
				t.Fatalf("report holds %v; want the %d newest refusals and no throttled calls", byOutcome, window)
			}

			// Once the window ends, the attacker is answered normally again.
			e.clock.Advance(audit.DefaultRefusalWindow)
			_, err = bad.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: victim.id}))
			wantCode(t, err, connect.CodeNotFound)
		})
	}
}

// wantCodeIn fails the test unless err is a Connect error with one of codes.
func wantCodeIn(t *testing.T, err error, codes ...connect.Code) *connect.Error {
	t.Helper()
	ce := new(connect.Error)
	if ce, ok := err.(*connect.Error); ok {
		for _, c := range codes {
			if ce.Code() == c {
				return ce
			}
		}
	}
	t.Fatalf("got %v, want one of %v", err, codes)
	return ce
}

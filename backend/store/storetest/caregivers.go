package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

func invite(hash, patientID string) store.Invite {
	return store.Invite{
		CodeHash: hash, PatientID: patientID,
		Scopes:    []store.Scope{store.ScopeViewMedicines, store.ScopeMissedDoseAlerts},
		EndsOn:    store.Date{Year: 2026, Month: time.December, Day: 31},
		CreatedAt: t0, ExpiresAt: t0.Add(7 * 24 * time.Hour),
	}
}

func sameInvite(t *testing.T, op string, got, want store.Invite) {
	t.Helper()
	g, w := got, want
	normValue(reflect.ValueOf(&g).Elem())
	normValue(reflect.ValueOf(&w).Elem())
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %+v, want %+v", op, got, want)
	}
}

var caregiverCases = []testCase{
	{"InvitePutConsumeOnce", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		want := invite("inv-1", "pat-1")
		must(t, "PutInvite", c.PutInvite(ctx, want))
		got, err := c.ConsumeInvite(ctx, "inv-1", t0.Add(time.Hour))
		must(t, "ConsumeInvite", err)
		sameInvite(t, "ConsumeInvite", got, want)
		_, err = c.ConsumeInvite(ctx, "inv-1", t0.Add(time.Hour))
		wantErr(t, "second ConsumeInvite", err, store.ErrNotFound)
		_, err = c.ConsumeInvite(ctx, "inv-none", t0)
		wantErr(t, "ConsumeInvite of an unknown code", err, store.ErrNotFound)
	}},
	{"InviteDuplicateHash", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		must(t, "PutInvite", c.PutInvite(ctx, invite("inv-1", "pat-1")))
		wantErr(t, "PutInvite same hash", c.PutInvite(ctx, invite("inv-1", "pat-2")), store.ErrAlreadyExists)
		got, err := c.ConsumeInvite(ctx, "inv-1", t0)
		must(t, "ConsumeInvite", err)
		if got.PatientID != "pat-1" {
			t.Fatalf("duplicate put changed the invite's patient to %q", got.PatientID)
		}
	}},
	{"SeveralLiveInvitesPerPatient", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		must(t, "PutInvite 1", c.PutInvite(ctx, invite("inv-1", "pat-1")))
		must(t, "PutInvite 2", c.PutInvite(ctx, invite("inv-2", "pat-1")))
		for _, h := range []string{"inv-1", "inv-2"} {
			_, err := c.ConsumeInvite(ctx, h, t0)
			must(t, "ConsumeInvite "+h, err)
		}
	}},
	{"InviteExpiresAtExpiresAt", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		inv := invite("inv-1", "pat-1")
		must(t, "PutInvite", c.PutInvite(ctx, inv))
		_, err := c.ConsumeInvite(ctx, "inv-1", inv.ExpiresAt)
		wantErr(t, "ConsumeInvite at expiry", err, store.ErrNotFound)
		must(t, "PutInvite", c.PutInvite(ctx, invite("inv-2", "pat-1")))
		_, err = c.ConsumeInvite(ctx, "inv-2", inv.ExpiresAt.Add(-time.Second))
		must(t, "ConsumeInvite a second before expiry", err)
	}},
	{"ConcurrentInviteConsumeHasOneWinner", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		must(t, "PutInvite", c.PutInvite(ctx, invite("inv-1", "pat-1")))
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = c.ConsumeInvite(ctx, "inv-1", t0) })
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("ConsumeInvite: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent consumers won, want exactly 1", wins, n)
		}
	}},
	{"UpdateAccountIncrementsVersion", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		must(t, "CreateAccount", s.CreateAccount(ctx, sampleAccount("acct-1", "ana@example.org")))
		updated, err := c.UpdateAccount(ctx, "acct-1", func(a store.Account) (store.Account, error) {
			a.PatientIDs = append(a.PatientIDs, "pat-9")
			a.DisplayName = "Ana P."
			a.TOTPSecret, a.TOTPLastStep = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 59392211
			a.Version = 99 // ignored: the store sets Version
			return a, nil
		})
		must(t, "UpdateAccount", err)
		if updated.Version != 2 {
			t.Fatalf("returned Version = %d, want 2", updated.Version)
		}
		got, err := s.GetAccount(ctx, "acct-1")
		must(t, "GetAccount", err)
		sameAccount(t, "GetAccount after update", got, updated)
		if got.Version != 2 || got.DisplayName != "Ana P." || !slices.Contains(got.PatientIDs, "pat-9") ||
			got.TOTPSecret != "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" || got.TOTPLastStep != 59392211 {
			t.Fatalf("update not stored: %+v", got)
		}
		byEmail, err := s.GetAccountByEmail(ctx, "ana@example.org")
		must(t, "GetAccountByEmail after update", err)
		if byEmail.Version != 2 {
			t.Fatalf("GetAccountByEmail sees Version %d, want 2", byEmail.Version)
		}
	}},
	{"UpdateAccountFnErrorAndNotFound", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		_, err := c.UpdateAccount(ctx, "acct-none", func(a store.Account) (store.Account, error) { return a, nil })
		wantErr(t, "UpdateAccount of an unknown account", err, store.ErrNotFound)
		orig := sampleAccount("acct-1", "ana@example.org")
		must(t, "CreateAccount", s.CreateAccount(ctx, orig))
		errNo := errors.New("no")
		_, err = c.UpdateAccount(ctx, "acct-1", func(a store.Account) (store.Account, error) {
			a.DisplayName = "Changed"
			return a, errNo
		})
		wantErr(t, "UpdateAccount", err, errNo)
		got, err := s.GetAccount(ctx, "acct-1")
		must(t, "GetAccount", err)
		sameAccount(t, "GetAccount after aborted update", got, orig)
		if got.Version != 1 {
			t.Fatalf("aborted update changed Version to %d", got.Version)
		}
	}},
	{"UpdateAccountRefusesIdentityChange", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		orig := sampleAccount("acct-1", "ana@example.org")
		must(t, "CreateAccount", s.CreateAccount(ctx, orig))
		changes := map[string]func(*store.Account){
			"ID":    func(a *store.Account) { a.ID = "acct-2" },
			"Email": func(a *store.Account) { a.Email = "eve@example.org" },
			"Role":  func(a *store.Account) { a.Role = store.RolePharmacyAdmin },
		}
		for name, change := range changes {
			_, err := c.UpdateAccount(ctx, "acct-1", func(a store.Account) (store.Account, error) {
				change(&a)
				return a, nil
			})
			if err == nil {
				t.Fatalf("UpdateAccount changing %s: got nil error", name)
			}
			got, err := s.GetAccount(ctx, "acct-1")
			must(t, "GetAccount", err)
			sameAccount(t, "GetAccount after refused "+name+" change", got, orig)
			_, err = s.GetAccountByEmail(ctx, "eve@example.org")
			wantErr(t, "GetAccountByEmail of the refused e-mail", err, store.ErrNotFound)
		}
	}},
	{"ConcurrentAccountUpdatesAllLand", func(t *testing.T, s store.Store) {
		c, ctx := s, t.Context()
		a := sampleAccount("acct-1", "ana@example.org")
		a.PatientIDs = nil
		must(t, "CreateAccount", s.CreateAccount(ctx, a))
		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = c.UpdateAccount(ctx, "acct-1", func(a store.Account) (store.Account, error) {
					a.PatientIDs = append(a.PatientIDs, fmt.Sprintf("pat-%02d", i))
					return a, nil
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, "concurrent UpdateAccount", err)
		}
		got, err := s.GetAccount(ctx, "acct-1")
		must(t, "GetAccount", err)
		ids := slices.Clone(got.PatientIDs)
		slices.Sort(ids)
		if len(ids) != n || len(slices.Compact(ids)) != n || got.Version != n+1 {
			t.Fatalf("after %d updates: Version %d, patients %v (an update was lost)", n, got.Version, got.PatientIDs)
		}
	}},
}

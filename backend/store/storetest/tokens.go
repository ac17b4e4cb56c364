package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// t0 is a round instant the token and rate-limit cases count from.
var t0 = time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)

func code(hash, patientID string) store.ActivationCode {
	return store.ActivationCode{CodeHash: hash, PatientID: patientID, CreatedAt: t0, ExpiresAt: t0.Add(72 * time.Hour)}
}

var activationCases = []testCase{
	{"PutGetConsumeOnce", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := code("hash-1", "pat-1")
		must(t, "PutActivationCode", s.PutActivationCode(ctx, want))
		now := t0.Add(time.Hour)
		got, err := s.GetActivationCode(ctx, "hash-1", now)
		must(t, "GetActivationCode", err)
		sameCode(t, "GetActivationCode", got, want)
		got, err = s.ConsumeActivationCode(ctx, "hash-1", now)
		must(t, "ConsumeActivationCode", err)
		sameCode(t, "ConsumeActivationCode", got, want)
		_, err = s.ConsumeActivationCode(ctx, "hash-1", now)
		wantErr(t, "second ConsumeActivationCode", err, store.ErrNotFound)
		_, err = s.GetActivationCode(ctx, "hash-1", now)
		wantErr(t, "GetActivationCode after consume", err, store.ErrNotFound)
	}},
	{"Unknown", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.GetActivationCode(ctx, "hash-none", t0)
		wantErr(t, "GetActivationCode", err, store.ErrNotFound)
		_, err = s.ConsumeActivationCode(ctx, "hash-none", t0)
		wantErr(t, "ConsumeActivationCode", err, store.ErrNotFound)
	}},
	{"NewCodeReplacesOldOfSamePatient", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Minute)
		must(t, "PutActivationCode old", s.PutActivationCode(ctx, code("hash-old", "pat-1")))
		must(t, "PutActivationCode other patient", s.PutActivationCode(ctx, code("hash-other", "pat-2")))
		must(t, "PutActivationCode new", s.PutActivationCode(ctx, code("hash-new", "pat-1")))
		_, err := s.GetActivationCode(ctx, "hash-old", now)
		wantErr(t, "GetActivationCode of the replaced code", err, store.ErrNotFound)
		_, err = s.ConsumeActivationCode(ctx, "hash-old", now)
		wantErr(t, "ConsumeActivationCode of the replaced code", err, store.ErrNotFound)
		for _, h := range []string{"hash-new", "hash-other"} {
			if _, err := s.ConsumeActivationCode(ctx, h, now); err != nil {
				t.Fatalf("ConsumeActivationCode(%s): %v", h, err)
			}
		}
	}},
	{"DuplicateHash", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "PutActivationCode", s.PutActivationCode(ctx, code("hash-1", "pat-1")))
		wantErr(t, "PutActivationCode same hash", s.PutActivationCode(ctx, code("hash-1", "pat-2")), store.ErrAlreadyExists)
		got, err := s.GetActivationCode(ctx, "hash-1", t0)
		must(t, "GetActivationCode", err)
		if got.PatientID != "pat-1" {
			t.Fatalf("duplicate put changed the code's patient to %q", got.PatientID)
		}
	}},
	{"ExpiresAtExpiresAt", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := code("hash-1", "pat-1")
		must(t, "PutActivationCode", s.PutActivationCode(ctx, c))
		_, err := s.GetActivationCode(ctx, c.CodeHash, c.ExpiresAt.Add(-time.Second))
		must(t, "GetActivationCode a second before expiry", err)
		_, err = s.GetActivationCode(ctx, c.CodeHash, c.ExpiresAt)
		wantErr(t, "GetActivationCode at expiry", err, store.ErrNotFound)
		_, err = s.ConsumeActivationCode(ctx, c.CodeHash, c.ExpiresAt)
		wantErr(t, "ConsumeActivationCode at expiry", err, store.ErrNotFound)
		_, err = s.ConsumeActivationCode(ctx, c.CodeHash, c.ExpiresAt.Add(time.Hour))
		wantErr(t, "ConsumeActivationCode after expiry", err, store.ErrNotFound)
	}},
	{"ConcurrentConsumeHasOneWinner", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "PutActivationCode", s.PutActivationCode(ctx, code("hash-1", "pat-1")))
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				_, err := s.ConsumeActivationCode(ctx, "hash-1", t0.Add(time.Minute))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		wins := 0
		for err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("ConsumeActivationCode: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent consumers won, want exactly 1", wins, n)
		}
	}},
}

func sameCode(t *testing.T, op string, got, want store.ActivationCode) {
	t.Helper()
	if got.CodeHash != want.CodeHash || got.PatientID != want.PatientID {
		t.Fatalf("%s = %+v, want %+v", op, got, want)
	}
	sameTime(t, op+": ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	sameTime(t, op+": CreatedAt", got.CreatedAt, want.CreatedAt)
}

// token returns the first token of a family, created at t0, valid 30 days.
func token(hash, family string) store.RefreshToken {
	return store.RefreshToken{Hash: hash, FamilyID: family, Subject: "acct-1", Role: store.RoleCaregiver, CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
}

// nextToken returns a successor the way a caller that holds only the
// opaque old token builds it: no family, subject or role.
func nextToken(hash string) store.RefreshToken {
	return store.RefreshToken{Hash: hash, CreatedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(30*24*time.Hour + time.Hour)}
}

// next asks for a rotation to nextToken(hash) without a grace.
func next(hash string) store.Rotation {
	return store.Rotation{Next: nextToken(hash), Sealed: []byte("sealed " + hash)}
}

// graced asks for a rotation to nextToken(hash) with a grace.
func graced(hash string, grace time.Duration) store.Rotation {
	r := next(hash)
	r.Grace = grace
	return r
}

// dead fails the test unless the token with hash can no longer be rotated.
func dead(t *testing.T, s store.Store, hash string, now time.Time) {
	t.Helper()
	_, err := s.RotateRefreshToken(t.Context(), hash, next(hash+"-probe"), now)
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTokenReused) && !errors.Is(err, store.ErrSessionRevoked) {
		t.Fatalf("rotating %s: got %v, want ErrNotFound, ErrTokenReused or ErrSessionRevoked (the token should be dead)", hash, err)
	}
}

var refreshCases = []testCase{
	{"RotateReturnsSpentAndInheritsFamily", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		first := token("rt-1", "fam-1")
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, first))
		now := t0.Add(time.Hour)
		spent, err := s.RotateRefreshToken(ctx, "rt-1", next("rt-2"), now)
		must(t, "RotateRefreshToken", err)
		sameToken(t, "spent token", spent.Spent, first)
		want := nextToken("rt-2")
		want.FamilyID, want.Subject, want.Role = first.FamilyID, first.Subject, first.Role
		sameToken(t, "successor", spent.Next, want)
		if spent.Repeat || string(spent.Sealed) != "sealed rt-2" {
			t.Fatalf("first rotation: Repeat %v, Sealed %q; want false, %q", spent.Repeat, spent.Sealed, "sealed rt-2")
		}
		spent, err = s.RotateRefreshToken(ctx, "rt-2", next("rt-3"), now.Add(time.Minute))
		must(t, "RotateRefreshToken of the successor", err)
		sameToken(t, "spent successor", spent.Spent, want)
	}},
	{"Unknown", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.RotateRefreshToken(ctx, "rt-none", next("rt-2"), t0)
		wantErr(t, "RotateRefreshToken", err, store.ErrNotFound)
		dead(t, s, "rt-2", t0)
		wantErr(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, "rt-none"), store.ErrNotFound)
	}},
	{"ReuseRevokesWholeFamily", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		must(t, "CreateRefreshToken other family", s.CreateRefreshToken(ctx, token("other-1", "fam-2")))
		_, err := s.RotateRefreshToken(ctx, "rt-1", next("rt-2"), now)
		must(t, "RotateRefreshToken 1→2", err)
		_, err = s.RotateRefreshToken(ctx, "rt-2", next("rt-3"), now)
		must(t, "RotateRefreshToken 2→3", err)
		_, err = s.RotateRefreshToken(ctx, "rt-1", next("rt-x"), now)
		wantErr(t, "RotateRefreshToken of a spent token", err, store.ErrTokenReused)
		dead(t, s, "rt-3", now) // the newest token, held by whoever stole rt-1 or by the user
		dead(t, s, "rt-x", now) // the reuse stored nothing
		dead(t, s, "rt-1", now)
		_, err = s.RotateRefreshToken(ctx, "other-1", next("other-2"), now)
		must(t, "RotateRefreshToken of another family", err)
	}},
	{"ExpiresAtExpiresAt", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		tok := token("rt-1", "fam-1")
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, tok))
		_, err := s.RotateRefreshToken(ctx, "rt-1", next("rt-2"), tok.ExpiresAt)
		wantErr(t, "RotateRefreshToken at expiry", err, store.ErrNotFound)
		dead(t, s, "rt-2", tok.ExpiresAt.Add(-time.Hour))
		_, err = s.RotateRefreshToken(ctx, "rt-1", next("rt-3"), tok.ExpiresAt.Add(-time.Second))
		must(t, "RotateRefreshToken a second before expiry", err)
	}},
	{"RevokeFamily", func(t *testing.T, s store.Store) {
		cases := []struct {
			name   string
			revoke string // which hash to name
		}{
			{"ByNewest", "rt-2"},
			{"BySpent", "rt-1"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := t.Context()
				now := t0.Add(time.Hour)
				fam := "fam-" + c.name
				must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token(c.name+"rt-1", fam)))
				must(t, "CreateRefreshToken other family", s.CreateRefreshToken(ctx, token(c.name+"other-1", fam+"-other")))
				_, err := s.RotateRefreshToken(ctx, c.name+"rt-1", next(c.name+"rt-2"), now)
				must(t, "RotateRefreshToken", err)
				must(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, c.name+c.revoke))
				_, err = s.RotateRefreshToken(ctx, c.name+"rt-2", next(c.name+"rt-3"), now)
				wantErr(t, "RotateRefreshToken after revoke", err, store.ErrSessionRevoked)
				dead(t, s, c.name+"rt-3", now)
				_, err = s.RotateRefreshToken(ctx, c.name+"other-1", next(c.name+"other-2"), now)
				must(t, "RotateRefreshToken of another family", err)
			})
		}
	}},
	{"ConcurrentRotationsLeaveAtMostOneLive", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.RotateRefreshToken(ctx, "rt-1", next(fmt.Sprintf("rt-next-%d", i)), now)
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTokenReused) && !errors.Is(err, store.ErrSessionRevoked):
				t.Fatalf("RotateRefreshToken: %v", err)
			}
		}
		if wins > 1 {
			t.Fatalf("%d of %d concurrent rotations of one token succeeded, want at most 1", wins, n)
		}
		live := 0
		for i := range n {
			if _, err := s.RotateRefreshToken(ctx, fmt.Sprintf("rt-next-%d", i), next(fmt.Sprintf("rt-after-%d", i)), now); err == nil {
				live++
			}
		}
		if live > 1 {
			t.Fatalf("%d successors of one token are live, want at most 1", live)
		}
	}},
}

var graceCases = []testCase{
	{"RepeatWithinGraceGetsTheSameSuccessor", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		first, err := s.RotateRefreshToken(ctx, "rt-1", graced("rt-2", 30*time.Second), now)
		must(t, "RotateRefreshToken", err)
		again, err := s.RotateRefreshToken(ctx, "rt-1", graced("rt-other", 30*time.Second), now.Add(29*time.Second))
		must(t, "RotateRefreshToken repeated within the grace", err)
		if !again.Repeat || string(again.Sealed) != "sealed rt-2" {
			t.Fatalf("repeat: Repeat %v, Sealed %q; want true, %q", again.Repeat, again.Sealed, "sealed rt-2")
		}
		sameToken(t, "repeat's successor", again.Next, first.Next)
		sameToken(t, "repeat's spent token", again.Spent, first.Spent)
		dead(t, s, "rt-other", now) // the repeat stored nothing
		_, err = s.RotateRefreshToken(ctx, "rt-2", next("rt-3"), now.Add(time.Minute))
		must(t, "RotateRefreshToken of the one successor", err)
	}},
	{"RepeatAfterGraceRevokesFamily", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		_, err := s.RotateRefreshToken(ctx, "rt-1", graced("rt-2", 30*time.Second), now)
		must(t, "RotateRefreshToken", err)
		_, err = s.RotateRefreshToken(ctx, "rt-1", graced("rt-x", 30*time.Second), now.Add(30*time.Second))
		wantErr(t, "RotateRefreshToken at the end of the grace", err, store.ErrTokenReused)
		_, err = s.RotateRefreshToken(ctx, "rt-2", next("rt-3"), now.Add(31*time.Second))
		wantErr(t, "RotateRefreshToken of the successor after the reuse", err, store.ErrSessionRevoked)
	}},
	{"RepeatAfterSuccessorSpentRevokesFamily", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		_, err := s.RotateRefreshToken(ctx, "rt-1", graced("rt-2", time.Minute), now)
		must(t, "RotateRefreshToken 1→2", err)
		_, err = s.RotateRefreshToken(ctx, "rt-2", graced("rt-3", time.Minute), now.Add(time.Second))
		must(t, "RotateRefreshToken 2→3", err)
		_, err = s.RotateRefreshToken(ctx, "rt-1", graced("rt-x", time.Minute), now.Add(2*time.Second))
		wantErr(t, "RotateRefreshToken of a token whose successor is spent", err, store.ErrTokenReused)
		dead(t, s, "rt-3", now.Add(3*time.Second))
	}},
	{"ConcurrentRotationsWithGraceShareOneSuccessor", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		const n = 12
		var wg sync.WaitGroup
		got := make([]store.Rotated, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = s.RotateRefreshToken(ctx, "rt-1", graced(fmt.Sprintf("rt-next-%d", i), 30*time.Second), now)
			})
		}
		wg.Wait()
		firsts := 0
		for i, err := range errs {
			must(t, "RotateRefreshToken", err)
			if !got[i].Repeat {
				firsts++
			}
			if got[i].Next.Hash != got[0].Next.Hash || string(got[i].Sealed) != "sealed "+got[0].Next.Hash {
				t.Fatalf("rotation %d got successor %q (sealed %q), rotation 0 got %q", i, got[i].Next.Hash, got[i].Sealed, got[0].Next.Hash)
			}
		}
		if firsts != 1 {
			t.Fatalf("%d of %d rotations were not repeats, want exactly 1", firsts, n)
		}
		for i := range n {
			if h := fmt.Sprintf("rt-next-%d", i); h != got[0].Next.Hash {
				dead(t, s, h, now)
			}
		}
		_, err := s.RotateRefreshToken(ctx, got[0].Next.Hash, next("rt-after"), now.Add(time.Second))
		must(t, "RotateRefreshToken of the one successor", err)
	}},
	{"RevokedIsToldApartFromUnknown", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		now := t0.Add(time.Hour)
		must(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, token("rt-1", "fam-1")))
		must(t, "RevokeRefreshFamily", s.RevokeRefreshFamily(ctx, "rt-1"))
		must(t, "RevokeRefreshFamily again", s.RevokeRefreshFamily(ctx, "rt-1"))
		_, err := s.RotateRefreshToken(ctx, "rt-1", next("rt-2"), now)
		wantErr(t, "RotateRefreshToken of a revoked token", err, store.ErrSessionRevoked)
		_, err = s.RotateRefreshToken(ctx, "rt-unknown", next("rt-3"), now)
		wantErr(t, "RotateRefreshToken of an unknown token", err, store.ErrNotFound)
	}},
}

func sameToken(t *testing.T, op string, got, want store.RefreshToken) {
	t.Helper()
	if got.Hash != want.Hash || got.FamilyID != want.FamilyID || got.Subject != want.Subject || got.Role != want.Role {
		t.Fatalf("%s = %+v, want %+v", op, got, want)
	}
	sameTime(t, op+": ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	sameTime(t, op+": CreatedAt", got.CreatedAt, want.CreatedAt)
}

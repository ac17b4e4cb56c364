package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// TestRotationRequestsAndOlderIndexEntries checks that a refresh (one
// rotation) costs three requests to Redis: the token's index entry, which
// names the family, its subject and role; the successor's index entry; the
// rotation script. An index entry written before it carried the subject
// and role (expiry and family only) still rotates, with one more request
// (the family's current token), and hands the successor the right ones.
func TestRotationRequestsAndOlderIndexEntries(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	var reqs redistest.Requests
	client.AddHook(&reqs)
	t0 := time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)
	s, err := New(t.Context(), client, Options{KEK: redistest.KEK(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	first := store.RefreshToken{Hash: "rt-1", FamilyID: "fam-1", Subject: "pat-7", Role: store.RolePatient, CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	if err := s.CreateRefreshToken(ctx, first); err != nil {
		t.Fatal(err)
	}
	next := func(hash string) store.Rotation {
		return store.Rotation{Next: store.RefreshToken{Hash: hash, CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}, Sealed: []byte("sealed " + hash)}
	}
	rotate := func(old, hash string, want int64) {
		t.Helper()
		n0 := reqs.N()
		got, err := s.RotateRefreshToken(ctx, old, next(hash), t0)
		if err != nil {
			t.Fatal(err)
		}
		if n := reqs.N() - n0; n != want {
			t.Errorf("rotating %s: %d requests to Redis, want %d", old, n, want)
		}
		if got.Next.Subject != "pat-7" || got.Next.Role != store.RolePatient || got.Next.FamilyID != "fam-1" {
			t.Errorf("rotating %s: successor of subject %q, role %q, family %q; want pat-7, patient, fam-1", old, got.Next.Subject, got.Next.Role, got.Next.FamilyID)
		}
		if got.Spent.Hash != old {
			t.Errorf("rotating %s: spent %q", old, got.Spent.Hash)
		}
	}
	// The first rotation on a Redis loads the script into its cache.
	warm := store.RefreshToken{Hash: "rt-w", FamilyID: "fam-w", Subject: "pat-7", Role: store.RolePatient, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateRefreshToken(ctx, warm); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, "rt-w", next("rt-w2"), t0); err != nil {
		t.Fatal(err)
	}
	rotate("rt-1", "rt-2", 3)

	// rt-2's index entry as an earlier version wrote it: expiry and family.
	older := strconv.FormatInt(next("rt-2").Next.ExpiresAt.UnixMicro(), 10) + "\nfam-1"
	if err := client.Set(ctx, s.k.token("rt-2"), older, 0).Err(); err != nil {
		t.Fatal(err)
	}
	rotate("rt-2", "rt-3", 4)
	rotate("rt-3", "rt-4", 3)
}

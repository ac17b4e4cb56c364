package bolt

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// TestExpiredRecordsArePruned checks that the file does not keep dead
// codes, invites, tokens and rate-limit counters forever: later write
// calls delete them as they pass.
func TestExpiredRecordsArePruned(t *testing.T) {
	ctx := t.Context()
	s, err := Open(filepath.Join(t.TempDir(), "mtm.db"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t0 := time.Date(2026, time.March, 14, 9, 0, 0, 0, time.UTC)
	const n = 100 // more than one prune batch
	for i := range n {
		exp := t0.Add(time.Duration(i) * time.Minute)
		id := fmt.Sprint(i)
		must(t, s.PutActivationCode(ctx, store.ActivationCode{CodeHash: "code-" + id, PatientID: "pat-" + id, ExpiresAt: exp}))
		must(t, s.PutInvite(ctx, store.Invite{CodeHash: "inv-" + id, PatientID: "pat-" + id, ExpiresAt: exp}))
		must(t, s.CreateRefreshToken(ctx, store.RefreshToken{Hash: "rt-" + id, FamilyID: "fam-" + id, ExpiresAt: exp}))
		if _, _, err := s.Allow(ctx, "k-"+id, 5, time.Minute, exp.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// A family with a spent and a live token loses only the expired one.
	must(t, s.CreateRefreshToken(ctx, store.RefreshToken{Hash: "keep-1", FamilyID: "fam-keep", ExpiresAt: t0.Add(time.Hour)}))
	if _, err := s.RotateRefreshToken(ctx, "keep-1", store.Rotation{Next: store.RefreshToken{Hash: "keep-2", ExpiresAt: t0.Add(1000 * time.Hour)}}, t0); err != nil {
		t.Fatal(err)
	}

	later := t0.Add(10 * time.Hour)
	for range 10 {
		if _, _, err := s.Allow(ctx, "probe", 1000, time.Hour, later); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	err = s.db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketCodes, bucketCodesByPatient, bucketInvites, bucketTokens, bucketFamilies, bucketCounters, bucketExpiry} {
			counts[string(b)] = tx.Bucket(b).Stats().KeyN
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"activation_codes": 0, "activation_by_pat": 0, "caregiver_invites": 0,
		"refresh_tokens":   1, // keep-2
		"refresh_families": 2, // fam-keep and its one member key
		"rate_counters":    1, // probe
		"expiry":           2, // keep-2 and probe
	}
	for b, n := range want {
		if counts[b] != n {
			t.Errorf("bucket %s holds %d keys after expiry, want %d", b, counts[b], n)
		}
	}
	if _, err := s.RotateRefreshToken(ctx, "keep-2", store.Rotation{Next: store.RefreshToken{Hash: "keep-3", ExpiresAt: later.Add(time.Hour)}}, later); err != nil {
		t.Fatalf("live token of a pruned family member: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

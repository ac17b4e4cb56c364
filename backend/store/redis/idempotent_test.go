package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// TestResentWriteIsAppliedOnce sends each write script twice with the same
// operation id, as go-redis does when a reply is lost, and checks that the
// second run answers like the first and changes nothing.
func TestResentWriteIsAppliedOnce(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	s, err := New(t.Context(), client, Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	twice := func(t *testing.T, sc *redis.Script, key string, args ...any) [2][]any {
		t.Helper()
		var out [2][]any
		keys := []string{op(key, "resent-op"), key}
		argv := append([]any{int64(60000)}, args...)
		for i := range out {
			res, err := sc.Run(ctx, client, keys, argv...).Slice()
			if err != nil {
				t.Fatal(err)
			}
			out[i] = res
		}
		return out
	}
	same := func(t *testing.T, got [2][]any, want string) {
		t.Helper()
		if got[0][0] != want || got[1][0] != want {
			t.Fatalf("first run %v, re-run %v; want both %s", got[0], got[1], want)
		}
	}

	t.Run("UpdatePatient", func(t *testing.T) {
		if err := s.CreatePatient(ctx, store.Patient{ID: "pat-1", PharmacyID: "ph-1"}); err != nil {
			t.Fatal(err)
		}
		next, err := s.encodePatient(store.Patient{ID: "pat-1", PharmacyID: "ph-1", GivenName: "Ana", Version: 2})
		if err != nil {
			t.Fatal(err)
		}
		same(t, twice(t, s.scripts.casVersioned, s.k.patient("pat-1"), header(formatSealed, 1), next), stOK)
		p, err := s.GetPatient(ctx, "pat-1")
		if err != nil || p.Version != 2 || p.GivenName != "Ana" {
			t.Fatalf("after a re-sent update: %+v, %v; want version 2", p, err)
		}
	})
	t.Run("Allow", func(t *testing.T) {
		got := twice(t, s.scripts.allow, s.k.window("login:ana", time.Unix(0, 0)), int64(60000))
		same(t, got, stOK)
		if got[0][1] != "1" || got[1][1] != "1" {
			t.Fatalf("counts %v and %v after one re-sent attempt, want 1 and 1", got[0][1], got[1][1])
		}
	})
	t.Run("RotateRefreshToken", func(t *testing.T) {
		first := store.RefreshToken{Hash: "rt-1", FamilyID: "fam-1", Subject: "acct-1", Role: store.RoleCaregiver, ExpiresAt: time.Now().Add(time.Hour)}
		if err := s.CreateRefreshToken(ctx, first); err != nil {
			t.Fatal(err)
		}
		rec, err := s.encode(tokenToWire(store.RefreshToken{Hash: "rt-2", FamilyID: "fam-1"}))
		if err != nil {
			t.Fatal(err)
		}
		// Without idempotence the re-run would see rt-1 spent and revoke the family.
		same(t, twice(t, s.scripts.rotate, s.k.family("fam-1"), "rt-1", "rt-2", rec, first.ExpiresAt.UnixMilli(), int64(60000), "", int64(0), time.Now().UnixMilli()), stOK)
		h, err := client.HGet(ctx, s.k.family("fam-1"), "h").Result()
		if err != nil || h != "rt-2" {
			t.Fatalf("current token %q, %v after a re-sent rotation; want rt-2 and the family live", h, err)
		}
	})
	t.Run("ConsumeActivationCode", func(t *testing.T) {
		if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		same(t, twice(t, s.scripts.delIfEqual, "k", "v"), stOK)
		if n, err := client.Exists(ctx, "k").Result(); err != nil || n != 0 {
			t.Fatalf("code still stored (%d, %v) after a re-sent consume; want it gone", n, err)
		}
	})
}

// TestTimeoutsAreUnavailable checks that a call that cannot get a
// connection in time, or whose server is gone, fails promptly with
// store.ErrUnavailable instead of hanging.
func TestTimeoutsAreUnavailable(t *testing.T) {
	addr, srv := redistest.StartServer(t)
	cfg := Config{Addrs: []string{addr}, PoolSize: 1}
	s, err := Open(t.Context(), cfg, Options{KEK: redistest.KEK(), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

	t.Run("ExhaustedPool", func(t *testing.T) {
		// Hold the only connection with a blocking command.
		blocked := make(chan struct{})
		go func() {
			defer close(blocked)
			s.rdb.BLPop(context.Background(), 1500*time.Millisecond, "nothing")
		}()
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		_, err := s.GetPatient(t.Context(), "pat-1")
		if !isUnavailable(err) || time.Since(start) > time.Second {
			t.Errorf("GetPatient with the pool exhausted: %v after %v; want ErrUnavailable within 1s", err, time.Since(start))
		}
		<-blocked
	})
	t.Run("ServerGone", func(t *testing.T) {
		srv.Kill()
		start := time.Now()
		err := s.CreatePharmacy(t.Context(), store.Pharmacy{ID: "ph-1"})
		if !isUnavailable(err) || time.Since(start) > 2*time.Second {
			t.Errorf("CreatePharmacy with the server gone: %v after %v; want ErrUnavailable within 2s", err, time.Since(start))
		}
	})
}

func isUnavailable(err error) bool { return err != nil && errors.Is(err, store.ErrUnavailable) }

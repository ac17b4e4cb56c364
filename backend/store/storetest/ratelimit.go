package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// allowN calls Allow n times at now and returns how many were allowed and
// the last retryAfter.
func allowN(t *testing.T, s store.Store, key string, n, limit int, window time.Duration, now time.Time) (allowed int, retryAfter time.Duration) {
	t.Helper()
	for range n {
		ok, ra, err := s.Allow(t.Context(), key, limit, window, now)
		must(t, "Allow", err)
		if ok {
			allowed++
		}
		retryAfter = ra
	}
	return allowed, retryAfter
}

var allowCases = []testCase{
	{"CountsUpToLimit", func(t *testing.T, s store.Store) {
		now := t0.Add(10 * time.Second) // window [t0, t0+1m)
		if got, _ := allowN(t, s, "login:ana", 5, 5, time.Minute, now); got != 5 {
			t.Fatalf("%d of 5 attempts allowed, want 5", got)
		}
		ok, retryAfter, err := s.Allow(t.Context(), "login:ana", 5, time.Minute, now.Add(20*time.Second))
		must(t, "Allow", err)
		if ok {
			t.Fatal("6th attempt within the window was allowed")
		}
		if retryAfter != 30*time.Second {
			t.Fatalf("retryAfter = %v, want 30s (until the window ends)", retryAfter)
		}
	}},
	{"WindowResets", func(t *testing.T, s store.Store) {
		if got, _ := allowN(t, s, "k", 4, 3, time.Minute, t0.Add(59*time.Second)); got != 3 {
			t.Fatalf("%d of 4 attempts allowed, want 3", got)
		}
		if got, _ := allowN(t, s, "k", 4, 3, time.Minute, t0.Add(time.Minute)); got != 3 {
			t.Fatalf("in the next window %d of 4 attempts allowed, want 3", got)
		}
		if got, _ := allowN(t, s, "k", 1, 3, time.Minute, t0.Add(10*time.Minute)); got != 1 {
			t.Fatal("after several idle windows an attempt was refused")
		}
	}},
	{"RefusedAttemptHasPositiveRetryAfter", func(t *testing.T, s store.Store) {
		now := t0.Add(time.Minute - time.Millisecond)
		ok, _, err := s.Allow(t.Context(), "k", 1, time.Minute, now)
		must(t, "Allow", err)
		if !ok {
			t.Fatal("first attempt refused")
		}
		ok, retryAfter, err := s.Allow(t.Context(), "k", 1, time.Minute, now)
		must(t, "Allow", err)
		if ok || retryAfter <= 0 || retryAfter > time.Minute {
			t.Fatalf("Allow = %v, retryAfter %v; want refused with 0 < retryAfter ≤ 1m", ok, retryAfter)
		}
	}},
	{"KeysAreIndependent", func(t *testing.T, s store.Store) {
		allowN(t, s, "login:a", 3, 2, time.Hour, t0)
		if got, _ := allowN(t, s, "login:b", 2, 2, time.Hour, t0); got != 2 {
			t.Fatalf("another key's attempts counted: %d of 2 allowed", got)
		}
	}},
	{"ConcurrentAttemptsShareOneCount", func(t *testing.T, s store.Store) {
		const n, limit = 16, 5
		var wg sync.WaitGroup
		oks := make(chan bool, n)
		for range n {
			wg.Go(func() {
				ok, _, err := s.Allow(t.Context(), "k", limit, time.Minute, t0)
				if err != nil {
					t.Errorf("Allow: %v", err)
				}
				oks <- ok
			})
		}
		wg.Wait()
		close(oks)
		allowed := 0
		for ok := range oks {
			if ok {
				allowed++
			}
		}
		if allowed != limit {
			t.Fatalf("%d of %d concurrent attempts allowed, want %d", allowed, n, limit)
		}
	}},
}

var forgetCases = []testCase{
	{"TakesBackSome", func(t *testing.T, s store.Store) {
		now := t0.Add(10 * time.Second)
		allowN(t, s, "k", 3, 3, time.Minute, now)
		must(t, "ForgetAttempts", s.ForgetAttempts(t.Context(), "k", 2, time.Minute, now))
		if got, _ := allowN(t, s, "k", 3, 3, time.Minute, now); got != 2 {
			t.Fatalf("after forgetting 2 of 3 attempts, %d of 3 more allowed, want 2", got)
		}
	}},
	{"AllRestartsTheCount", func(t *testing.T, s store.Store) {
		now := t0.Add(10 * time.Second)
		allowN(t, s, "k", 5, 3, time.Minute, now)
		must(t, "ForgetAttempts", s.ForgetAttempts(t.Context(), "k", 0, time.Minute, now))
		if got, _ := allowN(t, s, "k", 4, 3, time.Minute, now); got != 3 {
			t.Fatalf("after forgetting all attempts, %d of 4 allowed, want 3", got)
		}
	}},
	{"OtherWindowsAndKeysUntouched", func(t *testing.T, s store.Store) {
		allowN(t, s, "k", 3, 3, time.Minute, t0)
		allowN(t, s, "other", 3, 3, time.Minute, t0)
		must(t, "ForgetAttempts of a later window", s.ForgetAttempts(t.Context(), "k", 0, time.Minute, t0.Add(time.Minute)))
		must(t, "ForgetAttempts of an unknown key", s.ForgetAttempts(t.Context(), "none", 0, time.Minute, t0))
		must(t, "ForgetAttempts of k", s.ForgetAttempts(t.Context(), "k", 0, time.Minute, t0))
		if got, _ := allowN(t, s, "other", 1, 3, time.Minute, t0); got != 0 {
			t.Fatal("forgetting k's attempts forgot another key's")
		}
		if got, _ := allowN(t, s, "k", 4, 3, time.Minute, t0.Add(time.Second)); got != 3 {
			t.Fatalf("%d of 4 allowed after forgetting, want 3", got)
		}
	}},
}

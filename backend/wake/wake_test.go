package wake_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/wake"
)

type waker interface {
	Subscribe(topic string) (<-chan struct{}, func())
	Notify(ctx context.Context, topics ...string) error
}

// woken fails the test unless ch delivers a wake-up within a few seconds.
func woken(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no wake-up", what)
	}
}

// notWoken fails the test if ch delivers a wake-up within a short while.
func notWoken(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: unexpected wake-up", what)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestHubWakesOnlyTheTopicsWaiters(t *testing.T) {
	h := wake.NewHub()
	a1, cancelA1 := h.Subscribe("thread:a")
	a2, cancelA2 := h.Subscribe("thread:a")
	b, cancelB := h.Subscribe("thread:b")
	defer cancelA2()
	defer cancelB()
	for range 3 { // several notifications collapse into one pending wake-up
		if err := h.Notify(t.Context(), "thread:a"); err != nil {
			t.Fatal(err)
		}
	}
	woken(t, a1, "first waiter")
	woken(t, a2, "second waiter")
	notWoken(t, a1, "collapsed notifications")
	notWoken(t, b, "waiter of another topic")
	cancelA1()
	cancelA1() // a second cancel is harmless
	if n := h.Watching("thread:a"); n != 1 {
		t.Fatalf("Watching after one cancel = %d, want 1", n)
	}
}

func TestRedisWakesWaitersOfEveryProcess(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	log := slog.New(slog.DiscardHandler)
	newWaker := func() *wake.Redis {
		t.Helper()
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		w, err := wake.NewRedis(t.Context(), c, "mtm", 0, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	one, two := newWaker(), newWaker()
	for _, tc := range []struct {
		name           string
		sender, waiter waker
	}{{"same process", one, one}, {"other process", one, two}, {"back", two, one}} {
		t.Run(tc.name, func(t *testing.T) {
			ch, cancel := tc.waiter.Subscribe("inbox:ph-1")
			defer cancel()
			other, cancelOther := tc.waiter.Subscribe("inbox:ph-2")
			defer cancelOther()
			if err := tc.sender.Notify(t.Context(), "inbox:ph-1"); err != nil {
				t.Fatal(err)
			}
			woken(t, ch, "waiter")
			notWoken(t, other, "waiter of another pharmacy")
		})
	}
	// Several topics in one call (one round trip) wake each topic's
	// waiters in every process, and only theirs.
	for _, tc := range []struct {
		name           string
		sender, waiter waker
	}{{"several topics, same process", one, one}, {"several topics, other process", one, two}} {
		t.Run(tc.name, func(t *testing.T) {
			inbox, cancelInbox := tc.waiter.Subscribe("inbox:ph-1")
			defer cancelInbox()
			thread, cancelThread := tc.waiter.Subscribe("thread:th-1")
			defer cancelThread()
			other, cancelOther := tc.waiter.Subscribe("thread:th-2")
			defer cancelOther()
			if err := tc.sender.Notify(t.Context(), "inbox:ph-1", "thread:th-1", "patient:pt-1"); err != nil {
				t.Fatal(err)
			}
			woken(t, inbox, "inbox waiter")
			woken(t, thread, "thread waiter")
			notWoken(t, other, "waiter of another thread")
		})
	}
}

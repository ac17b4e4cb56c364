package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/api"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// openStream opens a watch stream and waits for its first response (the
// heartbeat every watch starts with), or returns the error it ended with.
// close ends it.
func openStream[T any](t *testing.T, open func(context.Context) (*connect.ServerStreamForClient[T], error)) (close func(), err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := open(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if !s.Receive() {
		err := s.Err()
		cancel()
		s.Close()
		if err == nil {
			err = errors.New("stream ended without a response")
		}
		return nil, err
	}
	return func() { cancel(); s.Close() }, nil
}

// TestWatchStreamsAreCapped: one sign-in cannot hold more watch streams
// than the per-principal cap, all callers together no more than the
// per-server cap; past either the stream is refused with
// resource_exhausted, others are unaffected, and closing a stream frees its
// slot.
func TestWatchStreamsAreCapped(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, base *env) {
		rph := base.pharmacy("ph_s", "rph@s.test")
		ann := base.enroll(rph, "Ann")
		bob := base.enroll(rph, "Bob")
		e := instance(t, base, base.store, func(c *api.Config) {
			c.MaxStreamsPerPrincipal = 3
			c.MaxStreams = 5
		})
		annThread := startThread(t, e.msgClient(ann.token), ann.id, "cm_stream_a", "hello").GetThread().GetId()
		bobThread := startThread(t, e.msgClient(bob.token), bob.id, "cm_stream_b", "hello").GetThread().GetId()
		watch := func(token, thread string) (func(), error) {
			return openStream(t, func(ctx context.Context) (*connect.ServerStreamForClient[mtmv1.WatchThreadResponse], error) {
				return e.msgClient(token).WatchThread(ctx, req(&mtmv1.WatchThreadRequest{ThreadId: thread}))
			})
		}
		inbox := func() (func(), error) {
			return openStream(t, func(ctx context.Context) (*connect.ServerStreamForClient[mtmv1.WatchInboxResponse], error) {
				return e.msgClient(rph).WatchInbox(ctx, req(&mtmv1.WatchInboxRequest{}))
			})
		}
		var closers []func()
		defer func() {
			for _, c := range closers {
				c()
			}
		}()
		mustOpen := func(c func(), err error) func() {
			t.Helper()
			if err != nil {
				t.Fatalf("stream within the caps refused: %v", err)
			}
			closers = append(closers, c)
			return c
		}

		// Ann fills her three slots; the fourth is refused.
		firstOfAnn := mustOpen(watch(ann.token, annThread))
		mustOpen(watch(ann.token, annThread))
		mustOpen(watch(ann.token, annThread))
		if _, err := watch(ann.token, annThread); connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("fourth stream of one patient: got %v, want resource_exhausted", err)
		}
		// Others still get theirs, up to the server's five.
		mustOpen(watch(bob.token, bobThread))
		mustOpen(inbox())
		if _, err := inbox(); connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("sixth stream on the server: got %v, want resource_exhausted", err)
		}
		// Closing one of Ann's frees a slot for anyone.
		firstOfAnn()
		eventually(t, func() bool {
			c, err := inbox()
			if err != nil {
				return false
			}
			closers = append(closers, c)
			return true
		})
	})
}

// eventually polls cond until it holds, failing the test after 10 s: a
// stream's slot is given back when its handler returns, which follows the
// client's cancel asynchronously.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// watcher streams one heartbeat, then waits for its context like a real
// watch stream.
type watcher struct {
	mtmv1connect.UnimplementedMessagingServiceHandler
}

func (watcher) WatchInbox(ctx context.Context, _ *connect.Request[mtmv1.WatchInboxRequest], s *connect.ServerStream[mtmv1.WatchInboxResponse]) error {
	if err := s.Send(&mtmv1.WatchInboxResponse{}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestStreamDrainEndsOpenStreams(t *testing.T) {
	drainCtx, drain := context.WithCancel(context.Background())
	defer drain()
	mux := http.NewServeMux()
	mux.Handle(mtmv1connect.NewMessagingServiceHandler(watcher{}, connect.WithInterceptors(streamDrain{ctx: drainCtx})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	client := mtmv1connect.NewMessagingServiceClient(srv.Client(), srv.URL)
	stream, err := client.WatchInbox(context.Background(), connect.NewRequest(&mtmv1.WatchInboxRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("no heartbeat: %v", stream.Err())
	}
	ended := make(chan error, 1)
	go func() {
		for stream.Receive() {
		}
		ended <- stream.Err()
	}()
	select {
	case err := <-ended:
		t.Fatalf("stream ended before draining: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	drain()
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("drained stream ended with %v, want unavailable so the client reconnects", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5s after draining")
	}
}

// TestAdminPprof: Go's profiles are on the admin address with
// --admin-pprof only.
func TestAdminPprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		var extra []string
		if on {
			extra = []string{"--admin-pprof"}
		}
		srv := startServer(t, t.TempDir(), extra...)
		res, err := http.Get(srv.admin + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[on]; res.StatusCode != want {
			t.Errorf("--admin-pprof %v: goroutine profile answered %s, want %d", on, res.Status, want)
		}
	}
}

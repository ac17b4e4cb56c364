package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/store"
)

// TestToConnectTimeouts holds the line between the caller's deadline
// (deadline_exceeded: the client gave up) and a timeout inside the server
// while the caller still had time (unavailable: clients retry it).
func TestToConnectTimeouts(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	// What the Redis store returns when Redis does not answer within its
	// own per-call timeout (a SIGSTOPped redis-server).
	storeTimeout := fmt.Errorf("redisstore.GetAccountByEmail: %w: %w", store.ErrUnavailable, context.DeadlineExceeded)
	diskFull := fmt.Errorf("bolt.UpdatePatient: %w: write mtm.db: %w", store.ErrUnavailable, syscall.ENOSPC)

	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want connect.Code
	}{
		{"store timeout while the caller has time", live, storeTimeout, connect.CodeUnavailable},
		{"bare inner timeout while the caller has time", live, fmt.Errorf("x: %w", context.DeadlineExceeded), connect.CodeUnavailable},
		{"disk full in the store", live, diskFull, connect.CodeUnavailable},
		{"the caller's own deadline passed", expired, storeTimeout, connect.CodeDeadlineExceeded},
		{"the caller went away", canceled, fmt.Errorf("x: %w", context.Canceled), connect.CodeCanceled},
		{"not found", live, fmt.Errorf("x: %w", store.ErrNotFound), connect.CodeNotFound},
		{"conflict", live, fmt.Errorf("x: %w", store.ErrConflict), connect.CodeAborted},
		{"anything else", live, errors.New("boom"), connect.CodeInternal},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := toConnect(tc.ctx, log, "/mtm.v1.X/Y", tc.err)
			if connect.CodeOf(got) != tc.want {
				t.Errorf("toConnect(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

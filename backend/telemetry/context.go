package telemetry

import (
	"context"
	"log/slog"
	"sync"
)

type requestKey struct{}

type requestValues struct {
	id     string
	logger *slog.Logger
	// http is set by Middleware; the interceptor marks it when an RPC
	// handler takes the request over.
	http *httpState
	// actor is filled in once the caller is known (SetActor).
	actor *actorSlot
}

// actorSlot holds the id of the principal an RPC acts as.
type actorSlot struct {
	mu sync.Mutex
	id string
}

// SetActor records, for the request's log line, the id of the principal
// the request acts as (a patient or account id, never a name). The auth
// interceptor calls it for signed-in callers; sign-in handlers for whom
// they signed in.
func SetActor(ctx context.Context, id string) {
	if v, ok := ctx.Value(requestKey{}).(requestValues); ok && v.actor != nil {
		v.actor.mu.Lock()
		v.actor.id = id
		v.actor.mu.Unlock()
	}
}

// actor returns what SetActor recorded for ctx's request, or "".
func actor(ctx context.Context) string {
	if v, ok := ctx.Value(requestKey{}).(requestValues); ok && v.actor != nil {
		v.actor.mu.Lock()
		defer v.actor.mu.Unlock()
		return v.actor.id
	}
	return ""
}

// discard is the logger for contexts that carry none. It holds no state
// that changes.
var discard = slog.New(slog.DiscardHandler)

// Logger returns the request-scoped logger the interceptor put into ctx,
// which adds request_id to every line. Outside an RPC (or in a context built
// without the interceptor) it returns a logger that discards everything, so
// callers never need a nil check.
func Logger(ctx context.Context) *slog.Logger {
	if v, ok := ctx.Value(requestKey{}).(requestValues); ok {
		return v.logger
	}
	return discard
}

// RequestID returns the id of the RPC that ctx belongs to, or "" outside an
// RPC.
func RequestID(ctx context.Context) string {
	if v, ok := ctx.Value(requestKey{}).(requestValues); ok {
		return v.id
	}
	return ""
}

// WithLogger returns a context whose Logger is l and whose RequestID is id,
// for background work (schedulers, tests) that runs outside an RPC but
// should log like one.
func WithLogger(ctx context.Context, id string, l *slog.Logger) context.Context {
	if id != "" {
		l = l.With(slog.String("request_id", id))
	}
	return context.WithValue(ctx, requestKey{}, requestValues{id: id, logger: l})
}

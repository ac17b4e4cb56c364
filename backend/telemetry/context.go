package telemetry

import (
	"context"
	"log/slog"
)

type requestKey struct{}

type requestValues struct {
	id     string
	logger *slog.Logger
	// http is set by Middleware; the interceptor marks it when an RPC
	// handler takes the request over.
	http *httpState
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

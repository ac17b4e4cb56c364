package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

type requestKey struct{}

// request is what the telemetry layer keeps for one request (or one piece
// of background work, see WithLogger): one allocation, shared by
// Middleware and the interceptor of the request.
type request struct {
	id string
	// base is the parent logger; the request's own logger (base with
	// request_id and trace_id) is built on the first call to Logger, so
	// that a call that logs nothing but its access line does not pay for
	// it: the access line adds those attributes itself (see logRPC).
	base    *slog.Logger
	traceID string // set before the handler runs; "" when untraced
	logger  atomic.Pointer[slog.Logger]
	// http is set by Middleware; the interceptor marks it when an RPC
	// handler takes the request over.
	http *httpState
	// actor is the id SetActor recorded.
	mu    sync.Mutex
	actor string
}

// requestFrom returns the request ctx belongs to, or nil.
func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// attrs are the attributes the request's logger adds to every line.
func (r *request) attrs() []slog.Attr {
	var as []slog.Attr
	if r.id != "" {
		as = append(as, slog.String("request_id", r.id))
	}
	if r.traceID != "" {
		as = append(as, slog.String("trace_id", r.traceID))
	}
	return as
}

// log returns the request's logger, building it on first use.
func (r *request) log() *slog.Logger {
	if l := r.logger.Load(); l != nil {
		return l
	}
	l := r.base
	if as := r.attrs(); len(as) > 0 {
		l = slog.New(l.Handler().WithAttrs(as))
	}
	r.logger.CompareAndSwap(nil, l)
	return r.logger.Load()
}

// SetActor records, for the request's log line, the id of the principal
// the request acts as (a patient or account id, never a name). The auth
// interceptor calls it for signed-in callers; sign-in handlers for whom
// they signed in.
func SetActor(ctx context.Context, id string) {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		r.actor = id
		r.mu.Unlock()
	}
}

// actor returns what SetActor recorded for ctx's request, or "".
func actor(ctx context.Context) string {
	if r := requestFrom(ctx); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.actor
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
	if r := requestFrom(ctx); r != nil {
		return r.log()
	}
	return discard
}

// RequestID returns the id of the RPC that ctx belongs to, or "" outside an
// RPC.
func RequestID(ctx context.Context) string {
	if r := requestFrom(ctx); r != nil {
		return r.id
	}
	return ""
}

// WithLogger returns a context whose Logger is l and whose RequestID is id,
// for background work (schedulers, tests) that runs outside an RPC but
// should log like one.
func WithLogger(ctx context.Context, id string, l *slog.Logger) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{id: id, base: l})
}

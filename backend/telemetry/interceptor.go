package telemetry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	"github.com/mtmapp/mtm/backend/clientaddr"
)

// RequestIDHeader is the header that carries the request id in both
// directions: a sane incoming value is kept, and the id in use is always
// returned to the caller.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id that will be honoured.
const maxRequestIDLen = 64

// Config holds the interceptor's dependencies. Logger and Metrics are
// required.
type Config struct {
	// Logger receives one line per RPC and is the parent of every
	// request-scoped logger.
	Logger *slog.Logger
	// Metrics records per-RPC counts and durations.
	Metrics *Metrics
	// Now is the clock used to measure durations; nil means time.Now.
	Now func() time.Time
	// NewRequestID returns a fresh request id; nil means 26 random
	// base32 characters from crypto/rand.
	NewRequestID func() string
}

// Interceptor is the server-side telemetry interceptor. It should be the
// first (outermost) interceptor so that it sees the final outcome of every
// other one. On the client side it passes calls through untouched.
type Interceptor struct {
	cfg Config
}

var _ connect.Interceptor = (*Interceptor)(nil)

// NewInterceptor returns the telemetry interceptor, or an error naming every
// missing dependency. For each handled RPC it:
//   - takes the caller's X-Request-Id when it is 1–64 characters of
//     [A-Za-z0-9_-], otherwise generates one, and returns it in the
//     X-Request-Id response header (on errors too);
//   - puts a logger carrying request_id into the context (see Logger),
//     and trace_id when an OpenTelemetry span is in the context (put it
//     there with an interceptor that runs before this one);
//   - turns a handler panic into an internal error instead of a dropped
//     connection;
//   - logs one line (procedure, protocol, stream type, code, duration, the
//     client address that clientaddr resolved, the actor id that SetActor
//     recorded) and records the metrics. Bodies are never logged.
func NewInterceptor(c Config) (*Interceptor, error) {
	var errs []error
	if c.Logger == nil {
		errs = append(errs, errors.New("missing logger"))
	}
	if c.Metrics == nil {
		errs = append(errs, errors.New("missing metrics"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry.NewInterceptor: %w", err)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.NewRequestID == nil {
		c.NewRequestID = rand.Text
	}
	return &Interceptor{cfg: c}, nil
}

// WrapUnary implements connect.Interceptor.
func (i *Interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (res connect.AnyResponse, err error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		start := i.cfg.Now()
		ctx, id, setHeader := i.begin(ctx, req.Header().Get(RequestIDHeader))
		// The handler call info's response header reaches the caller on
		// success and on error alike.
		info, inHandler := connect.CallInfoForHandlerContext(ctx)
		if inHandler && setHeader {
			info.ResponseHeader().Set(RequestIDHeader, id)
		}
		defer func() {
			if p := recover(); p != nil {
				err = i.recovered(ctx, req.Spec(), p)
				res = nil
			}
			if res != nil && !inHandler && setHeader {
				res.Header().Set(RequestIDHeader, id)
			}
			i.finish(ctx, req.Spec(), req.Peer(), start, err)
		}()
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor; client streams pass
// through.
func (i *Interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (i *Interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) (err error) {
		start := i.cfg.Now()
		ctx, id, setHeader := i.begin(ctx, conn.RequestHeader().Get(RequestIDHeader))
		if setHeader {
			conn.ResponseHeader().Set(RequestIDHeader, id)
		}
		open := i.cfg.Metrics.openStreams.WithLabelValues(conn.Spec().Procedure)
		open.Inc()
		defer open.Dec()
		defer func() {
			if p := recover(); p != nil {
				err = i.recovered(ctx, conn.Spec(), p)
			}
			i.finish(ctx, conn.Spec(), conn.Peer(), start, err)
		}()
		return next(ctx, conn)
	}
}

// requestID returns incoming when it is a sane token, else a fresh id.
func (i *Interceptor) requestID(incoming string) string {
	if validRequestID(incoming) {
		return incoming
	}
	return i.cfg.NewRequestID()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// begin gives the RPC its request id and logger. When Middleware already
// did (and set the response header), it only marks the request as reached
// by an RPC handler; setHeader reports whether the caller must still send
// the id back.
func (i *Interceptor) begin(ctx context.Context, incoming string) (_ context.Context, id string, setHeader bool) {
	if r := requestFrom(ctx); r != nil && r.http != nil {
		r.http.reached.Store(true)
		// The tracing interceptor runs after Middleware: the span is
		// known only now, before the handler (or anything that logs) runs.
		if t := traceID(ctx); t != "" && t != r.traceID {
			r.traceID = t
			r.logger.Store(nil)
		}
		return ctx, r.id, false
	}
	id = i.requestID(incoming)
	return i.withRequest(ctx, id, nil), id, true
}

func (i *Interceptor) withRequest(ctx context.Context, id string, h *httpState) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{id: id, base: i.cfg.Logger, traceID: traceID(ctx), http: h})
}

// traceID is the trace id of the span in ctx (the tracing interceptor ran
// first), or "": a request's log lines carry it so that they lead to its
// trace.
func traceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// recovered turns a handler panic into an internal error. The panic value
// is not logged (it may carry patient data); its type and the stack are.
func (i *Interceptor) recovered(ctx context.Context, spec connect.Spec, p any) error {
	Logger(ctx).LogAttrs(ctx, slog.LevelError, "rpc panic",
		slog.String("procedure", spec.Procedure),
		slog.String("panic_type", fmt.Sprintf("%T", p)),
		slog.String("stack", string(debug.Stack())),
	)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

func (i *Interceptor) finish(ctx context.Context, spec connect.Spec, peer connect.Peer, start time.Time, err error) {
	elapsed := i.cfg.Now().Sub(start)
	code := codeName(err)
	i.cfg.Metrics.observe(spec.Procedure, code, elapsed)
	i.logRPC(ctx, levelFor(err),
		slog.String("procedure", spec.Procedure),
		slog.String("protocol", peer.Protocol),
		slog.String("stream_type", streamTypeName(spec.StreamType)),
		slog.String("code", code),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client_addr", clientaddr.String(ctx)),
		slog.String("actor", actor(ctx)),
	)
}

// logRPC writes the access line "rpc" with attrs, as Logger(ctx) would:
// the same handler, request_id and trace_id first. It hands the record to
// the handler itself, which spares building the request's logger when
// nothing else logs, and the caller's program counter that slog takes for
// every line (no handler here prints the source).
func (i *Interceptor) logRPC(ctx context.Context, level slog.Level, attrs ...slog.Attr) {
	r := requestFrom(ctx)
	if r == nil {
		Logger(ctx).LogAttrs(ctx, level, "rpc", attrs...)
		return
	}
	h := r.base.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	rec := slog.NewRecord(time.Now(), level, "rpc", 0)
	if r.id != "" {
		rec.AddAttrs(slog.String("request_id", r.id))
	}
	if r.traceID != "" {
		rec.AddAttrs(slog.String("trace_id", r.traceID))
	}
	rec.AddAttrs(attrs...)
	_ = h.Handle(ctx, rec)
}

// codeName is the Connect code of err in its wire spelling, "ok" for nil.
func codeName(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// levelFor logs server-side failures louder than caller mistakes.
func levelFor(err error) slog.Level {
	if err == nil {
		return slog.LevelInfo
	}
	switch connect.CodeOf(err) {
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss:
		return slog.LevelError
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeResourceExhausted:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

func streamTypeName(t connect.StreamType) string {
	switch t {
	case connect.StreamTypeUnary:
		return "unary"
	case connect.StreamTypeClient:
		return "client_stream"
	case connect.StreamTypeServer:
		return "server_stream"
	default:
		return "bidi_stream"
	}
}

package telemetry

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/mtmapp/mtm/backend/clientaddr"
)

// httpState is shared between Middleware and the interceptor of one request.
type httpState struct {
	reached atomic.Bool
}

// maxLoggedPath bounds the URL path written to the log for requests that
// reached no RPC handler.
const maxLoggedPath = 128

// Middleware wraps the API's HTTP handler so that every response, including
// those Connect sends before any interceptor runs (unknown procedure, body
// over the size limit, wrong content type), carries X-Request-Id. Requests
// that an RPC handler takes are logged and counted by the interceptor as
// usual; the others get one "http" log line (method, path, status,
// duration) and count in mtm_http_non_rpc_requests_total{status}. Use it
// with the same Interceptor that the handlers use.
func (i *Interceptor) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		growStack()
		start := i.cfg.Now()
		id := i.requestID(r.Header.Get(RequestIDHeader))
		w.Header().Set(RequestIDHeader, id)
		state := &httpState{}
		ctx := i.withRequest(r.Context(), id, state)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if state.reached.Load() {
			return
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		i.cfg.Metrics.nonRPC.WithLabelValues(strconv.Itoa(status)).Inc()
		path := r.URL.Path
		if len(path) > maxLoggedPath {
			path = path[:maxLoggedPath] + "…"
		}
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		Logger(ctx).LogAttrs(ctx, level, "http",
			slog.String("method", r.Method),
			slog.String("path", path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(i.cfg.Now().Sub(start).Microseconds())/1000),
			slog.String("client_addr", clientaddr.String(ctx)),
		)
	})
}

// statusWriter records the status code. It passes Flush through and
// unwraps for http.ResponseController, which Connect's streaming and
// full-duplex HTTP/2 support rely on.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// requestStackBytes is the goroutine stack a request is given up front
// (see growStack).
const requestStackBytes = 28 << 10

// growStack makes the calling goroutine's stack large enough for a whole
// RPC at once. The HTTP/2 server runs every request on a new goroutine,
// which starts with a small stack; an RPC through Connect and the
// interceptors (the access-log line deepest of all) outgrows it twice, and
// each growth copies the stack and adjusts every frame on it, which the
// CPU profile of an empty call showed as about a quarter of the server's
// handler time. One growth here, while the stack is a few frames deep, is
// far cheaper. 28 KiB makes the stack 32 KiB: at 12 KiB (a 16 KiB stack) a
// PML read on Redis still outgrew it at the store call, and that copy cost
// 6% of the call's CPU.
//
// What grows the stack is the frame's size, which the function's prologue
// checks; the array is declared on a branch that never runs (stackIndex is
// never negative, which the compiler cannot know), so that it is not
// zeroed: zeroing 28 KiB of fresh stack was a third of this function's
// cost.
//
//go:noinline
func growStack() byte {
	if stackIndex >= 0 {
		return 0
	}
	var pad [requestStackBytes]byte
	return pad[-stackIndex%len(pad)]
}

// stackIndex is a variable so that growStack's branch and read are not
// folded away.
var stackIndex = 0

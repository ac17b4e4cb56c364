package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	httppprof "net/http/pprof"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/console"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/telemetry"
)

// HTTP server limits of the API port. There is deliberately no
// ReadTimeout/WriteTimeout: they would cut long-lived server streams. Unary
// calls are bounded by the deadline clamp and request bodies by
// --max-request-bytes.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// apiServer is the public listener's HTTP server plus what shutdown needs.
type apiServer struct {
	http   *http.Server
	health *grpchealth.StaticChecker
	// drain ends every open stream when shutdown starts.
	drain context.CancelFunc
	// console is the pharmacist console on /console/ (nil when disabled).
	console *console.Console
}

// serverDeps are what newAPIServer wires together.
type serverDeps struct {
	cfg     Config
	store   store.Store
	tokens  *auth.Tokens
	logger  *slog.Logger
	metrics *telemetry.Metrics
	now     func() time.Time
	audit   *audit.Recorder
	// planner keeps the reminder index in step with records.
	planner api.ReminderPlanner
	// replies pushes pharmacists' replies to the patient side.
	replies api.ReplyNotifier
	// refresh wakes the patient side's apps when the pharmacy changes a record.
	refresh api.RecordNotifier
	// wake carries messaging wake-ups between instances; registry gets
	// the services' own metrics.
	wake     backends.Waker
	registry prometheus.Registerer
	// tracing, when set, gives every mtm.v1 call a span (outermost, so
	// that the request's logger carries the trace id).
	tracing connect.Interceptor
}

// newAPIServer builds the one handler that serves the four mtm.v1 services,
// gRPC health and reflection, and the JWKS, behind the interceptors in this
// order: tracing (when on; not for health and reflection, which load
// balancers poll), telemetry (sees the final outcome), deadline clamp, stream drain,
// auth, audit (knows the caller, records every call naming a patient,
// including refused and invalid ones), the request check (role gate, then
// validation that stops at the first violation); the api package adds its
// error mapping innermost.
func newAPIServer(d serverDeps) (*apiServer, error) {
	tel, err := telemetry.NewInterceptor(telemetry.Config{Logger: d.logger, Metrics: d.metrics, Now: d.now})
	if err != nil {
		return nil, fmt.Errorf("mtmd.newAPIServer: %w", err)
	}
	clamp, err := telemetry.NewDeadlineClamp(d.cfg.MaxRPCTimeout, 0)
	if err != nil {
		return nil, fmt.Errorf("mtmd.newAPIServer: %w", err)
	}
	check, err := api.NewRequestCheck()
	if err != nil {
		return nil, fmt.Errorf("mtmd.newAPIServer: %w", err)
	}
	drainCtx, drain := context.WithCancel(context.Background())
	readMax := connect.WithReadMaxBytes(int(d.cfg.MaxRequestBytes))

	mux := http.NewServeMux()
	var interceptors []connect.Interceptor
	if d.tracing != nil {
		interceptors = append(interceptors, d.tracing)
	}
	apiOpts := []connect.HandlerOption{
		connect.WithInterceptors(append(interceptors,
			tel,
			clamp,
			streamDrain{ctx: drainCtx},
			auth.NewInterceptor(d.tokens, api.PublicProcedures()),
			audit.NewInterceptor(d.audit),
			check,
		)...),
		readMax,
		fastGzip(),
	}
	resolver, err := d.cfg.clientResolver()
	if err != nil {
		drain()
		return nil, fmt.Errorf("mtmd.newAPIServer: %w", err)
	}
	err = api.Register(mux, api.Config{Store: d.store, Tokens: d.tokens, Logger: d.logger, Now: d.now, RefreshGrace: d.cfg.RefreshGrace,
		Wake: d.wake, Metrics: d.registry, Reminders: d.planner, ReplyNotifier: d.replies, RecordNotifier: d.refresh,
		MaxStreams: d.cfg.MaxStreams, MaxStreamsPerPrincipal: d.cfg.MaxPrincipalStreams}, apiOpts...)
	if err == nil && d.cfg.BenchEndpoints {
		err = api.RegisterBench(mux, d.logger, apiOpts...)
	}
	if err != nil {
		drain()
		return nil, fmt.Errorf("mtmd.newAPIServer: %w", err)
	}

	// Health and reflection are public; they still get a request id, a log
	// line and metrics.
	public := []connect.HandlerOption{connect.WithInterceptors(tel, clamp), readMax, fastGzip()}
	health := grpchealth.NewStaticChecker(api.ServiceNames...)
	mux.Handle(grpchealth.NewHandler(health, public...))
	reflector := grpcreflect.NewStaticReflector(api.ServiceNames...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, public...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, public...))
	mux.Handle("GET /.well-known/jwks.json", d.tokens.JWKSHandler())

	// The console calls the API in process through the same handler (and
	// so the same interceptors) as any client.
	var con *console.Console
	if d.cfg.Console {
		con, err = console.New(console.Config{API: tel.Middleware(mux), Store: d.store, Logger: d.logger, Now: d.now,
			IdleTimeout: d.cfg.ConsoleIdleTimeout, Secure: d.cfg.Edge.tlsEnabled()})
		if err != nil {
			drain()
			return nil, fmt.Errorf("mtmd.newAPIServer: %w", err)
		}
		mux.Handle("/console/", con)
	}

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true) // over TLS, with --tls-cert (tls.go)
	srv := &http.Server{
		// The resolver puts the client address (behind trusted proxies)
		// into every request's context; the telemetry middleware gives even
		// requests that no RPC handler takes (unknown paths, oversized
		// bodies, JWKS) a request id, a log line and a count.
		Handler:           resolver.Middleware(tel.Middleware(withCORS(d.cfg.Edge.origins(), mux))),
		Protocols:         &protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(drain)
	return &apiServer{http: srv, health: health, drain: drain, console: con}, nil
}

// newAdminServer serves /metrics from reg, /healthz (liveness: the
// process runs), /readyz (readiness: ready answers) and, with pprof, Go's
// runtime profiles under /debug/pprof/.
func newAdminServer(reg *prometheus.Registry, ready http.Handler, logger *slog.Logger, pprof bool) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", ready)
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	mux.Handle("/", telemetry.AdminHandler(reg))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// streamDrain ends open streams when its context is cancelled (after the
// shutdown grace): http.Server.Shutdown waits for handlers to return, and a
// watch stream only returns when its context ends. A stream ended this way
// fails with unavailable, never a clean end, however the handler returned,
// so that apps reconnect (to another instance). Unary calls are left to
// finish on their own.
type streamDrain struct{ ctx context.Context }

func (s streamDrain) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (s streamDrain) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (s streamDrain) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		stop := context.AfterFunc(s.ctx, func() { cancel(errServerDraining) })
		defer stop()
		err := next(ctx, conn)
		if errors.Is(context.Cause(ctx), errServerDraining) {
			return connect.NewError(connect.CodeUnavailable, errServerDraining)
		}
		return err
	}
}

var errServerDraining = errors.New("server is shutting down; reconnect")

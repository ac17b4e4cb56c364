package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/demo"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/store/storemetrics"
	"github.com/mtmapp/mtm/backend/telemetry"
	"github.com/mtmapp/mtm/backend/telemetry/tracing"

	_ "time/tzdata" // patients' IANA zones without system zone files
)

// hooks let tests observe a running server. The zero value is what main uses.
type hooks struct {
	// ready, if set, is called once both listeners are bound, with their
	// addresses (admin is "" when disabled).
	ready func(api, admin string)
	// logger, if set, is called with the process logger as soon as it is
	// built (main installs it for go-redis and the standard library).
	logger func(*slog.Logger)
	// apiHandler, if set, is called before ready with the API listener's
	// HTTP handler (benchmarks call it without the network).
	apiHandler func(http.Handler)
}

// run starts mtmd with the command-line args (without the program name) and
// the environment seen through getenv, writes logs and --demo instructions
// to stdout, and returns when ctx is cancelled and the servers have shut
// down (nil), or when starting or serving fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return runWith(ctx, args, getenv, stdout, hooks{})
}

func runWith(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, h hooks) error {
	cfg, err := parseConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return nil
	}
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Logs (and the demo instructions) go out in batches; the audit
	// archive on stdout is written through, in order with them.
	out, auditOut, flushOut := stdout, stdout, func() {}
	if lw := bufferLogs(stdout); lw != nil {
		defer lw.Close() // registered first: runs after every deferred line
		out, auditOut, flushOut = lw, lw.WriteThrough(), func() { _ = lw.Flush() }
	}
	logger := cfg.newLogger(out)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if h.logger != nil {
		h.logger(logger)
	}
	now := time.Now
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Traces, when the OTEL_* variables ask for them; tr is nil (and
	// nothing is instrumented) otherwise. The spans still buffered are
	// sent last, after the servers and the dispatcher stopped.
	tr, err := tracing.FromEnv(ctx, getenv, "", foldRepeats(logger))
	if err != nil {
		return fmt.Errorf("traces: %w", err)
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(fctx); err != nil {
			logger.Error("flushing traces", "error", err.Error())
		}
	}()
	settings := backends.Settings{
		RedisURL: cfg.RedisURL, DataDir: cfg.DataDir, RequireDurable: cfg.RedisRequireDurable, Logger: logger,
		ReplicaAcks: cfg.RedisReplicaAcks, ReplicaTimeout: cfg.RedisReplicaTimeout,
		KEKURI: cfg.KEKURI, KEKFile: cfg.KEKFile, NoSeal: cfg.NoSeal,
		RecordCache: cfg.Caches.Records, KeyCache: cfg.Caches.Keys,
	}
	if tr != nil {
		settings.InstrumentRedis = tr.InstrumentRedis
		logger.Info("sending traces", "protocol", tracing.Protocol(getenv))
	}
	backendStore, backend, err := backends.Open(ctx, settings)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer func() {
		if err := backendStore.Close(); err != nil {
			logger.Error("closing store", "error", err.Error())
		}
	}()
	// Everything but the health check and wake-ups (which need the
	// backend's own methods) uses the measured store.
	st, err := storemetrics.Wrap(backendStore, reg, now, storemetrics.Traced(tr.Tracer("github.com/mtmapp/mtm/backend/store")))
	if err != nil {
		return err
	}

	keys, err := bootstrap.OpenKeySet(ctx, bootstrap.KeySettings{
		Source: cfg.SigningKeys, Dir: cfg.SigningKeyDir, WrapFile: cfg.SigningKeyWrapFile,
	}, st, now, logger)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	keys.LogUnknownKeys(logger)
	go reloadKeys(ctx, keys, cfg.KeyReload, logger)
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{
		Issuer: cfg.Issuer, Audience: cfg.Audience, AccessTTL: cfg.AccessTTL, Now: now,
		VerifiedCache: cfg.Caches.Tokens,
	})
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}

	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		return err
	}
	sink, err := openAuditSink(cfg, auditOut, now)
	if err != nil {
		return fmt.Errorf("audit sink: %w", err)
	}
	defer func() {
		if err := sink.Close(); err != nil {
			logger.Error("closing audit sink", "error", err.Error())
		}
	}()
	recorder, err := audit.NewRecorder(st, sink, cfg.AuditWindow, now, logger)
	if err != nil {
		return err
	}
	if err := recorder.LimitRefusals(audit.RefusalLimit{Throttle: st, Metrics: reg}); err != nil {
		return err
	}
	if err := recorder.Register(reg); err != nil {
		return err
	}
	waker, closeWaker, err := backends.NewWaker(ctx, backendStore, logger)
	if err != nil {
		return err
	}
	defer closeWaker()
	rem, err := newReminders(ctx, cfg.Reminders, st, foldRepeats(logger), now, reg, tr)
	if err != nil {
		return fmt.Errorf("reminders: %w", err)
	}
	// The dispatcher runs until shutdown, then drains its batches in
	// flight before the store closes.
	remCtx, stopReminders := context.WithCancel(ctx)
	defer rem.start(remCtx)()
	defer stopReminders()
	rpcTracing, err := tr.Interceptor()
	if err != nil {
		return err
	}
	srv, err := newAPIServer(serverDeps{tracing: rpcTracing, planner: rem.dispatcher.Planner(), cfg: cfg, store: st, tokens: tokens, logger: logger, metrics: metrics, now: now, audit: recorder,
		wake: waker, registry: reg, replies: rem.replies, refresh: rem.refresh})
	if err != nil {
		return err
	}
	defer srv.drain()
	if srv.console != nil {
		defer srv.console.Close()
	}
	ready, err := newReadiness(readyChecks(cfg, backendStore, sink, reg), cfg.Health, srv.health, reg, logger)
	if err != nil {
		return err
	}
	ready.checkOnce(ctx)
	// The checks write probe files in the data and audit directories: run
	// returns only once the last one has finished, before the store and
	// the sink close.
	readyCtx, stopReadiness := context.WithCancel(ctx)
	readinessDone := make(chan struct{})
	defer func() { stopReadiness(); <-readinessDone }()
	go func() { defer close(readinessDone); ready.run(readyCtx) }()

	apiLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on --addr: %w", err)
	}
	defer apiLn.Close()
	if apiLn, err = tlsListener(cfg.Edge, apiLn, logger, now); err != nil {
		return fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	var admin *http.Server
	var adminLn net.Listener
	if cfg.AdminAddr != "" {
		if adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
			return fmt.Errorf("listen on --admin-addr: %w", err)
		}
		defer adminLn.Close()
		admin = newAdminServer(reg, ready, logger, cfg.AdminPprof)
	}

	baseURL := "http://" + apiLn.Addr().String()
	if cfg.Edge.tlsEnabled() {
		baseURL = "https://" + apiLn.Addr().String()
	}
	if cfg.Demo {
		creds, err := demo.Seed(ctx, st, now())
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		demo.PrintInstructions(out, baseURL, creds)
		if cfg.Console {
			fmt.Fprintf(out, "\nPharmacist console: %s/console/ (sign in as the pharmacist above)\n", baseURL)
		}
	}

	if cfg.NoSeal {
		logger.Warn("--no-seal: PHI is written UNENCRYPTED (load test baseline only)")
	}
	if cfg.Reencrypt.on() {
		// The pass runs beside the servers; it stops with them and
		// resumes from its cursor at the next start.
		var pass sync.WaitGroup
		defer pass.Wait() // before the store closes
		pass.Add(1)
		go func() {
			defer pass.Done()
			if err := runReencrypt(ctx, st, backendStore, cfg.Reencrypt, reencryptState(cfg.DataDir), logger); err != nil && ctx.Err() == nil {
				logger.Error("re-encryption pass stopped; restart mtmd to resume it", "error", err.Error())
			}
		}()
	}

	errc := make(chan error, 2)
	go func() { errc <- serve(srv.http, apiLn, "api") }()
	adminAddr := ""
	if admin != nil {
		adminAddr = adminLn.Addr().String()
		go func() { errc <- serve(admin, adminLn, "admin") }()
	}
	logger.Info("mtmd serving", "addr", apiLn.Addr().String(), "admin_addr", adminAddr,
		"store", backend, "data_dir", cfg.DataDir, "signing_keys", keys.KeyIDs(), "signing_keys_in", cfg.SigningKeys)
	flushOut() // whoever waits for this line sees it at once
	if h.apiHandler != nil {
		h.apiHandler(srv.http.Handler)
	}
	if h.ready != nil {
		h.ready(apiLn.Addr().String(), adminAddr)
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("mtmd shutting down", "grace", cfg.Health.ShutdownGrace.String(), "timeout", cfg.ShutdownTimeout.String())
	case serveErr = <-errc:
		logger.Error("server failed, shutting down", "error", serveErr.Error())
	}
	// Health turns NOT_SERVING while calls are still served, so that load
	// balancers move new calls elsewhere; then open streams end with
	// unavailable (their apps reconnect elsewhere) and the listeners close.
	ready.stop()
	if serveErr == nil && cfg.Health.ShutdownGrace > 0 {
		select {
		case <-time.After(cfg.Health.ShutdownGrace):
		case serveErr = <-errc:
		}
	}
	srv.drain()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	servers := []*http.Server{srv.http}
	if admin != nil {
		servers = append(servers, admin)
	}
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w (in-flight calls cut after %s)", err, cfg.ShutdownTimeout))
			s.Close()
		}
	}
	if serveErr != nil {
		errs = append([]error{serveErr}, errs...)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("mtmd stopped")
	return nil
}

// serve runs s on ln until Shutdown; only a failure is an error.
func serve(s *http.Server, ln net.Listener, name string) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}

// openAuditSink opens the archive the configuration names.
func openAuditSink(cfg Config, stdout io.Writer, now func() time.Time) (audit.Sink, error) {
	if cfg.AuditSink == "stdout" {
		return audit.NewWriterSink(stdout), nil
	}
	return audit.NewFileSink(cfg.AuditDir, 0, now)
}

// reloadKeys re-reads the signing keys every interval until ctx ends, so
// that a key rotated or retired with `mtmctl keys` (in the store or the
// shared directory) signs or stops verifying here too.
func reloadKeys(ctx context.Context, keys *auth.KeySet, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	current := slices.Clone(keys.KeyIDs())
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := keys.Reload(rctx)
		cancel()
		if err != nil {
			logger.Error("reloading signing keys", "error", err.Error())
			continue
		}
		if ids := keys.KeyIDs(); !slices.Equal(ids, current) {
			logger.Info("signing keys changed", "signing_keys", ids)
			current = slices.Clone(ids)
		}
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/api"
)

// healthFlags configure readiness and the start of shutdown.
type healthFlags struct {
	ShutdownGrace time.Duration // NOT_SERVING this long before the listener closes
	ReadyInterval time.Duration // how often readiness is checked
	ReadyTimeout  time.Duration // deadline of each readiness check
	DiskMinFree   int64         // bytes that must stay free on the data and audit disks
}

func bindHealthFlags(fs *flag.FlagSet, h *healthFlags) {
	fs.DurationVar(&h.ShutdownGrace, "shutdown-grace", 5*time.Second, "on SIGTERM, health answers NOT_SERVING (and /readyz 503) this long while calls are still served, so load balancers stop sending new ones; then streams end with unavailable and the listener closes")
	fs.DurationVar(&h.ReadyInterval, "ready-interval", 2*time.Second, "how often readiness (/readyz, gRPC health) checks the store, the audit archive and the disk")
	fs.DurationVar(&h.ReadyTimeout, "ready-timeout", time.Second, "deadline of each readiness check (a store that does not answer within it is not ready)")
	fs.Int64Var(&h.DiskMinFree, "disk-min-free", 64<<20, "`bytes` that must stay free on the disks of --data-dir and --audit-dir for the instance to be ready")
}

func (h healthFlags) problems() []string {
	var out []string
	if h.ShutdownGrace < 0 || h.ShutdownGrace > 5*time.Minute {
		out = append(out, fmt.Sprintf("--shutdown-grace/MTM_SHUTDOWN_GRACE %s: must be between 0 and 5m", h.ShutdownGrace))
	}
	if h.ReadyInterval < 100*time.Millisecond || h.ReadyInterval > time.Minute {
		out = append(out, fmt.Sprintf("--ready-interval/MTM_READY_INTERVAL %s: must be between 100ms and 1m", h.ReadyInterval))
	}
	if h.ReadyTimeout < 10*time.Millisecond || h.ReadyTimeout > 30*time.Second {
		out = append(out, fmt.Sprintf("--ready-timeout/MTM_READY_TIMEOUT %s: must be between 10ms and 30s", h.ReadyTimeout))
	}
	if h.DiskMinFree < 0 {
		out = append(out, fmt.Sprintf("--disk-min-free/MTM_DISK_MIN_FREE %d: must not be negative", h.DiskMinFree))
	}
	return out
}

// readyCheck is one thing an instance needs to serve calls.
type readyCheck struct {
	name  string
	check func(ctx context.Context) error
}

// readiness runs the checks every interval, each under its own deadline,
// and publishes the outcome to gRPC health (the whole server and every
// mtm.v1 service: they all need the same store, archive and disk), to
// /readyz and to the mtm_ready{check} gauge. Once shutdown starts it
// answers NOT_SERVING for good. Liveness (/healthz) is not its business: a
// process whose store is down is alive and must not be restarted for it.
type readiness struct {
	checks   []readyCheck
	interval time.Duration
	timeout  time.Duration
	health   *grpchealth.StaticChecker
	logger   *slog.Logger
	gauge    *prometheus.GaugeVec

	mu       sync.Mutex
	failures []string // "name: error", in check order; empty when ready
	checked  bool
	stopping bool
}

// metricReady is 1 while a readiness check passes, 0 while it fails.
const metricReady = "mtm_ready"

func newReadiness(checks []readyCheck, h healthFlags, health *grpchealth.StaticChecker, reg prometheus.Registerer, logger *slog.Logger) (*readiness, error) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricReady,
		Help: "1 while a readiness check (store, audit_archive, disk) passes, 0 while it fails.",
	}, []string{"check"})
	if err := reg.Register(g); err != nil {
		return nil, fmt.Errorf("mtmd.newReadiness: %w", err)
	}
	return &readiness{checks: checks, interval: h.ReadyInterval, timeout: h.ReadyTimeout, health: health, logger: logger, gauge: g}, nil
}

// run checks now and then every interval until ctx ends.
func (r *readiness) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.checkOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkOnce runs every check concurrently and publishes the outcome.
func (r *readiness) checkOnce(ctx context.Context) {
	errs := make([]error, len(r.checks))
	var wg sync.WaitGroup
	for i, c := range r.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			errs[i] = c.check(cctx)
		})
	}
	wg.Wait()
	var failures []string
	for i, c := range r.checks {
		v := 1.0
		if errs[i] != nil {
			v = 0
			failures = append(failures, c.name+": "+errs[i].Error())
		}
		r.gauge.WithLabelValues(c.name).Set(v)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping || ctx.Err() != nil {
		return
	}
	wasReady, first := len(r.failures) == 0, !r.checked
	r.failures, r.checked = failures, true
	ready := len(failures) == 0
	switch {
	case !ready && (wasReady || first):
		r.logger.Error("not ready", "failing", strings.Join(failures, "; "))
	case ready && !wasReady && !first:
		r.logger.Info("ready again")
	}
	r.setStatus(ready)
}

func (r *readiness) setStatus(ready bool) {
	s := grpchealth.StatusServing
	if !ready {
		s = grpchealth.StatusNotServing
	}
	r.health.SetStatus("", s)
	for _, name := range api.ServiceNames {
		r.health.SetStatus(name, s)
	}
}

// stop turns health NOT_SERVING for the rest of the process's life.
func (r *readiness) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopping = true
	r.setStatus(false)
}

// ServeHTTP answers /readyz: 200 "ready" while every check passes, else
// 503 naming each failing check, or "shutting down".
func (r *readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	stopping, checked, failures := r.stopping, r.checked, r.failures
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case stopping:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: shutting down")
	case !checked:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: not checked yet")
	case len(failures) > 0:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:")
		for _, f := range failures {
			fmt.Fprintln(w, "  "+f)
		}
	default:
		fmt.Fprintln(w, "ready")
	}
}

// pinger is a store that can say whether it answers (both backends can).
type pinger interface {
	Ping(ctx context.Context) error
}

// checker is an audit archive that can say whether it takes events.
type checker interface {
	Check(ctx context.Context) error
}

// diskCheck passes while dir is writable (a probe file is created, written,
// synced and removed) and its file system keeps at least minFree bytes
// free for unprivileged writers. free, when set, receives the free bytes.
func diskCheck(dir string, minFree int64, free prometheus.Gauge) func(context.Context) error {
	return func(ctx context.Context) error {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		avail := int64(st.Bavail) * int64(st.Bsize)
		if free != nil {
			free.Set(float64(avail))
		}
		if avail < minFree {
			return fmt.Errorf("%s: %d bytes free, below --disk-min-free %d", dir, avail, minFree)
		}
		f, err := os.CreateTemp(dir, ".probe-*")
		if err != nil {
			return fmt.Errorf("%s: not writable: %w", dir, err)
		}
		_, err = f.Write([]byte("probe\n"))
		err = errors.Join(err, f.Sync(), f.Close(), os.Remove(f.Name()))
		if err != nil {
			return fmt.Errorf("%s: not writable: %w", dir, err)
		}
		return ctx.Err()
	}
}

// readyChecks are what this configuration needs to serve calls: the store
// answering, the audit archive taking events, and room on the disks that
// hold the embedded store, the signing keys and the archive. The free
// bytes of each disk also go to mtm_disk_free_bytes{dir}.
func readyChecks(cfg Config, st any, sink any, reg prometheus.Registerer) []readyCheck {
	var checks []readyCheck
	if p, ok := st.(pinger); ok {
		checks = append(checks, readyCheck{"store", p.Ping})
	}
	if c, ok := sink.(checker); ok {
		checks = append(checks, readyCheck{"audit_archive", c.Check})
	}
	free := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mtm_disk_free_bytes",
		Help: "Bytes free for the server on the disk of --data-dir (dir=data) and --audit-dir (dir=audit).",
	}, []string{"dir"})
	if err := reg.Register(free); err != nil {
		free = nil
	}
	dirs := []struct{ label, path string }{{"data", cfg.DataDir}}
	if cfg.AuditSink == "file" {
		dirs = append(dirs, struct{ label, path string }{"audit", cfg.AuditDir})
	}
	var disk []func(context.Context) error
	for _, d := range dirs {
		var g prometheus.Gauge
		if free != nil {
			g = free.WithLabelValues(d.label)
		}
		disk = append(disk, diskCheck(d.path, cfg.Health.DiskMinFree, g))
	}
	checks = append(checks, readyCheck{"disk", func(ctx context.Context) error {
		var errs []error
		for _, c := range disk {
			errs = append(errs, c(ctx))
		}
		return errors.Join(errs...)
	}})
	return checks
}

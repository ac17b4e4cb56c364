// Package telemetry gives every RPC a request id, a request-scoped
// structured logger, one access-log line and Prometheus metrics, and bounds
// how long a call may run. It also serves the admin endpoints (/metrics,
// /healthz) that operators scrape.
//
// Nothing here ever logs or records request or response bodies: only the
// procedure, protocol, outcome code and duration.
package telemetry

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names, exported so dashboards and tests refer to one spelling.
const (
	MetricRequests = "mtm_rpc_requests_total"
	MetricDuration = "mtm_rpc_duration_seconds"
	MetricNonRPC   = "mtm_http_non_rpc_requests_total"
	// MetricOpenStreams is the number of server streams open now
	// (WatchThread, WatchInbox), by procedure.
	MetricOpenStreams = "mtm_rpc_open_streams"
)

// durationBuckets spans a cache hit (1 ms) to a slow store call near the
// default deadline clamp (30 s).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics holds the per-RPC Prometheus collectors. Build it with
// NewMetrics; the zero value is not usable.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	nonRPC   *prometheus.CounterVec
	// openStreams counts server streams from start to end.
	openStreams *prometheus.GaugeVec
	// byProcedure caches each procedure's duration histogram and "ok"
	// counter (*procMetrics by procedure name), sparing the label hashing
	// and lookup of every successful call.
	byProcedure sync.Map
}

type procMetrics struct {
	duration prometheus.Observer
	// ok is created at the procedure's first success, as WithLabelValues
	// would: a procedure that never succeeded has no "ok" series.
	ok atomic.Pointer[prometheus.Counter]
}

// observe records one finished RPC.
func (m *Metrics) observe(procedure, code string, elapsed time.Duration) {
	v, ok := m.byProcedure.Load(procedure)
	if !ok {
		v, _ = m.byProcedure.LoadOrStore(procedure, &procMetrics{duration: m.duration.WithLabelValues(procedure)})
	}
	pm := v.(*procMetrics)
	if code == "ok" {
		c := pm.ok.Load()
		if c == nil {
			counter := m.requests.WithLabelValues(procedure, "ok")
			pm.ok.CompareAndSwap(nil, &counter)
			c = pm.ok.Load()
		}
		(*c).Inc()
	} else {
		m.requests.WithLabelValues(procedure, code).Inc()
	}
	pm.duration.Observe(elapsed.Seconds())
}

// NewMetrics creates the RPC collectors and registers them on reg:
// mtm_rpc_requests_total{procedure,code} counts finished RPCs by Connect code
// ("ok" for success), mtm_rpc_duration_seconds{procedure} observes their
// duration, mtm_http_non_rpc_requests_total{status} counts HTTP requests
// that Middleware saw but no RPC handler took (JWKS, unknown paths, bodies
// over the size limit, wrong content types), and
// mtm_rpc_open_streams{procedure} is the number of server streams open now.
// It fails when reg is nil or already holds collectors with these names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("telemetry.NewMetrics: missing registerer")
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Finished RPCs by procedure and Connect code.",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDuration,
			Help:    "RPC duration in seconds, from the handler's first interceptor to its return.",
			Buckets: durationBuckets,
		}, []string{"procedure"}),
		nonRPC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricNonRPC,
			Help: "HTTP requests answered without reaching an RPC handler, by HTTP status.",
		}, []string{"status"}),
		openStreams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricOpenStreams,
			Help: "Server streams open now, by procedure.",
		}, []string{"procedure"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.nonRPC, m.openStreams} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("telemetry.NewMetrics: %w", err)
		}
	}
	return m, nil
}

// AdminHandler serves the operator endpoints: GET /metrics in the Prometheus
// exposition format from g, and GET /healthz answering 200 "ok" while the
// process runs. It must be served on an admin address, not the public API
// port.
func AdminHandler(g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

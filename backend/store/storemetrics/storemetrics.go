// Package storemetrics measures every store operation for operators: how
// long it took and, when it failed, why, whatever the backend (bbolt or
// Redis). It wraps a store.Store and changes nothing about what the store
// answers.
//
// With the Traced option every operation is also a span (named
// "store.<Operation>"), the parent of the backend's own spans (Redis
// commands); it carries the operation's name and error kind only, never
// its arguments or results.
//
// Answers that are part of the contract (not found, already exists,
// conflict, token reused) and calls whose caller gave up are not failures.
package storemetrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mtmapp/mtm/backend/store"
)

// Metric names, for dashboards and alerts.
const (
	// MetricDuration observes every operation's duration in seconds,
	// labelled operation (the store.Store method, e.g. "UpdatePatient").
	MetricDuration = "mtm_store_operation_duration_seconds"
	// MetricErrors counts failed operations by operation and kind:
	// "unavailable" (Redis down or stalled, timeouts), "disk" (the disk
	// refused a write: full, read-only, I/O error) or "other".
	MetricErrors = "mtm_store_errors_total"
	// MetricThrottleRefusals counts attempts a sign-in throttle refused,
	// by throttle (the key's leading name, e.g. "login:account").
	MetricThrottleRefusals = "mtm_throttle_refusals_total"
)

// durationBuckets span a bbolt read (100 µs) to the Redis store's timeout.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Store is a store.Store whose operations are measured. Methods it does
// not wrap pass through unmeasured (Close).
type Store struct {
	store.Store
	now              func() time.Time
	duration         *prometheus.HistogramVec
	errors           *prometheus.CounterVec
	throttleRefusals *prometheus.CounterVec
	// tracer, when set, gives every operation a span (Traced).
	tracer trace.Tracer
}

var _ store.Store = (*Store)(nil)

// Option changes what Wrap builds.
type Option func(*Store)

// Traced makes every operation a span of tracer, a child of the span in
// the caller's context. A nil tracer leaves tracing off.
func Traced(tracer trace.Tracer) Option {
	return func(s *Store) { s.tracer = tracer }
}

// Wrap returns next measured into reg. It fails when next or reg is
// missing or reg already holds these metrics. now may be nil (time.Now).
func Wrap(next store.Store, reg prometheus.Registerer, now func() time.Time, opts ...Option) (*Store, error) {
	if next == nil || reg == nil {
		return nil, errors.New("storemetrics.Wrap: missing store or registerer")
	}
	if now == nil {
		now = time.Now
	}
	s := &Store{
		Store: next,
		now:   now,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDuration,
			Help:    "Store operation duration in seconds, by operation.",
			Buckets: durationBuckets,
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricErrors,
			Help: "Failed store operations by operation and kind (unavailable, disk, other).",
		}, []string{"operation", "kind"}),
		throttleRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricThrottleRefusals,
			Help: "Attempts refused by a sign-in throttle, by throttle.",
		}, []string{"throttle"}),
	}
	for _, o := range opts {
		o(s)
	}
	for _, c := range []prometheus.Collector{s.duration, s.errors, s.throttleRefusals} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("storemetrics.Wrap: %w", err)
		}
	}
	return s, nil
}

// Unwrap returns the measured store, for callers that need a backend's own
// methods (a health check's Ping, Redis pub/sub).
func (s *Store) Unwrap() store.Store { return s.Store }

// begin starts an operation: its span, when tracing, in the returned
// context, and its clock.
func (s *Store) begin(ctx context.Context, op string) (context.Context, time.Time) {
	if s.tracer != nil {
		ctx, _ = s.tracer.Start(ctx, "store."+op, trace.WithAttributes(attribute.String("mtm.store.operation", op)))
	}
	return ctx, s.now()
}

// observe records one finished operation and ends its span. ctx is the
// one begin returned.
func (s *Store) observe(ctx context.Context, op string, start time.Time, err error) {
	s.duration.WithLabelValues(op).Observe(s.now().Sub(start).Seconds())
	kind := Kind(ctx, err)
	if kind != "" {
		s.errors.WithLabelValues(op, kind).Inc()
	}
	if s.tracer != nil {
		span := trace.SpanFromContext(ctx)
		if kind != "" {
			// The kind, not the error's text: a backend's message may
			// quote what it was given.
			span.SetAttributes(attribute.String("error.type", kind))
			span.SetStatus(codes.Error, kind)
		}
		span.End()
	}
}

// Kind classifies a store error as MetricErrors counts it: "" for success,
// contract answers and calls whose own context ended, else "disk",
// "unavailable" or "other".
func Kind(ctx context.Context, err error) string {
	switch {
	case err == nil, ctx.Err() != nil,
		errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrAlreadyExists),
		errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrTokenReused):
		return ""
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT),
		errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EIO):
		return "disk"
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "unavailable"
	}
	return "other"
}

// throttleName is the label for a throttle key: its first two
// colon-separated words ("login:account:<hash>" → "login:account"), so
// that no address, account or code becomes a label value. Keys of any
// other shape count as "other".
func throttleName(key string) string {
	parts := strings.SplitN(key, ":", 3)
	if len(parts) < 3 {
		return "other"
	}
	name := parts[0] + ":" + parts[1]
	for _, r := range name {
		if (r < 'a' || r > 'z') && r != '_' && r != ':' {
			return "other"
		}
	}
	return name
}

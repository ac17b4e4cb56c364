// Package audit records who touched which patient's data: every RPC that
// names a patient appends an event, allowed or denied, before the answer
// leaves the server. Events go twice: to a bounded per-patient window in the
// store (the "who accessed my record" report) and to an append-only Sink for
// the long archive.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/store"
)

// DefaultWindow is how many events per patient the store keeps.
const DefaultWindow = 1000

// ErrArchive marks a Record failure in the archive (the Sink), as opposed
// to the store's per-patient window, whose failures wrap the store's own
// errors (store.ErrUnavailable when Redis is down or the disk full).
var ErrArchive = errors.New("audit archive unavailable")

// MetricWriteFailures counts events that could not be written, by part
// ("archive" or "store"); each one failed the call that caused it.
const MetricWriteFailures = "mtm_audit_write_failures_total"

// Sink is the append-only archive of audit events. Write returns only once
// the event is handed to durable storage or a log pipeline.
type Sink interface {
	Write(ctx context.Context, ev store.AuditEvent) error
	Close() error
}

// Recorder writes events to the store window and the sink.
type Recorder struct {
	trail  store.AuditTrail
	sink   Sink
	window int
	now    func() time.Time
	log    *slog.Logger
	// refusals is the per-principal refusal budget; nil: none (see
	// LimitRefusals).
	refusals *refusals
	// failures counts Record failures by part; Register exposes it.
	failures *prometheus.CounterVec
}

// NewRecorder returns a Recorder. trail, sink and log are required; window
// ≤ 0 means DefaultWindow; nil now means time.Now.
func NewRecorder(trail store.AuditTrail, sink Sink, window int, now func() time.Time, log *slog.Logger) (*Recorder, error) {
	var errs []error
	if trail == nil {
		errs = append(errs, errors.New("missing audit trail store"))
	}
	if sink == nil {
		errs = append(errs, errors.New("missing audit sink"))
	}
	if log == nil {
		errs = append(errs, errors.New("missing logger"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("audit.NewRecorder: %w", err)
	}
	if window <= 0 {
		window = DefaultWindow
	}
	if now == nil {
		now = time.Now
	}
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricWriteFailures,
		Help: "Audit events that could not be written (the call failed with unavailable), by part: archive or store.",
	}, []string{"part"})
	failures.WithLabelValues("archive")
	failures.WithLabelValues("store")
	return &Recorder{trail: trail, sink: sink, window: window, now: now, log: log, failures: failures}, nil
}

// Register adds the Recorder's metrics (MetricWriteFailures) to reg.
func (r *Recorder) Register(reg prometheus.Registerer) error {
	if err := reg.Register(r.failures); err != nil {
		return fmt.Errorf("audit.Recorder.Register: %w", err)
	}
	return nil
}

// Record stamps ev with an id and time when missing and writes it to the
// sink and, when inWindow, to the patient's window in the store. A sink
// failure wraps ErrArchive; a store failure wraps the store's error.
func (r *Recorder) Record(ctx context.Context, ev store.AuditEvent, inWindow bool) error {
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	if ev.ID == "" {
		ev.ID = NewEventID(ev.Time)
	}
	if err := r.sink.Write(ctx, ev); err != nil {
		r.failures.WithLabelValues("archive").Inc()
		return fmt.Errorf("audit.Record: %w: %w", ErrArchive, err)
	}
	if inWindow && ev.PatientID != "" {
		if err := r.trail.AppendAuditEvent(ctx, ev, r.window); err != nil {
			r.failures.WithLabelValues("store").Inc()
			return fmt.Errorf("audit.Record: store: %w", err)
		}
	}
	return nil
}

// NewEventID returns an id that sorts by time (nanoseconds, hex) with a
// random suffix against collisions.
func NewEventID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x", uint64(t.UnixNano())) + hex.EncodeToString(b[:])
}

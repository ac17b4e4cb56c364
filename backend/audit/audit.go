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

	"github.com/mtmapp/mtm/backend/store"
)

// DefaultWindow is how many events per patient the store keeps.
const DefaultWindow = 1000

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
	return &Recorder{trail: trail, sink: sink, window: window, now: now, log: log}, nil
}

// Record stamps ev with an id and time when missing and writes it to the
// sink and, when inWindow, to the patient's window in the store.
func (r *Recorder) Record(ctx context.Context, ev store.AuditEvent, inWindow bool) error {
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	if ev.ID == "" {
		ev.ID = NewEventID(ev.Time)
	}
	if err := r.sink.Write(ctx, ev); err != nil {
		return fmt.Errorf("audit.Record: sink: %w", err)
	}
	if inWindow && ev.PatientID != "" {
		if err := r.trail.AppendAuditEvent(ctx, ev, r.window); err != nil {
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

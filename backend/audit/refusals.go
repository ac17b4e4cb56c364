package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

// Refusal budget defaults: a caller refused more often than this (calls on
// records they may not touch) is throttled until the window ends. An app
// whose grant was revoked and that polls once a minute stays well inside it.
const (
	DefaultRefusalLimit  = 30
	DefaultRefusalWindow = 10 * time.Minute
)

// MetricRefusals counts refused calls on patients' data by outcome
// ("denied", "throttled").
const MetricRefusals = "mtm_audit_refused_calls_total"

// RefusalLimit bounds how often one principal may be refused: past Limit
// denied calls in a fixed Window (counted in Throttle, so shared by every
// instance) the principal's calls that go through the audit interceptor
// get resource_exhausted with Retry-After until the window ends, without
// reaching a handler. Throttled calls enter the archive only, never a
// patient's report.
type RefusalLimit struct {
	Throttle store.Throttle
	Limit    int           // ≤ 0: DefaultRefusalLimit
	Window   time.Duration // ≤ 0: DefaultRefusalWindow
	// Metrics, when set, receives MetricRefusals.
	Metrics prometheus.Registerer
}

// LimitRefusals turns on the refusal budget (see RefusalLimit). Call it
// before the interceptor serves calls.
func (r *Recorder) LimitRefusals(l RefusalLimit) error {
	if l.Throttle == nil {
		return errors.New("audit.LimitRefusals: missing throttle store")
	}
	if l.Limit <= 0 {
		l.Limit = DefaultRefusalLimit
	}
	if l.Window <= 0 {
		l.Window = DefaultRefusalWindow
	}
	lim := &refusals{limit: l, now: r.now, log: r.log, blocked: map[string]time.Time{},
		counted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRefusals,
			Help: "Refused calls on patients' data: denied (no access) and throttled (past the per-caller refusal budget).",
		}, []string{"outcome"})}
	for _, o := range []store.AuditOutcome{store.OutcomeDenied, store.OutcomeThrottled} {
		lim.counted.WithLabelValues(string(o)) // exported as 0 from the start
	}
	if l.Metrics != nil {
		if err := l.Metrics.Register(lim.counted); err != nil {
			return fmt.Errorf("audit.LimitRefusals: %w", err)
		}
	}
	r.refusals = lim
	return nil
}

// refusals is the per-principal refusal budget. The count lives in the
// store; blocked remembers, in this process, who is over budget until
// when, so that a blocked caller costs no store write per call.
type refusals struct {
	limit   RefusalLimit
	now     func() time.Time
	log     *slog.Logger
	counted *prometheus.CounterVec

	mu      sync.Mutex
	blocked map[string]time.Time // principal key → end of its window
}

func refusalKey(p auth.Principal) string { return "audit-refusals:" + string(p.Role) + ":" + p.Subject }

// check returns resource_exhausted when p is over its refusal budget.
func (l *refusals) check(p auth.Principal) error {
	if l == nil || p.Subject == "" {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	until, ok := l.blocked[refusalKey(p)]
	l.mu.Unlock()
	if !ok || !now.Before(until) {
		return nil
	}
	l.counted.WithLabelValues(string(store.OutcomeThrottled)).Inc()
	e := connect.NewError(connect.CodeResourceExhausted, errors.New("too many refused calls; retry later"))
	e.Meta().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Round(time.Second)/time.Second)+1))
	return e
}

// denied counts one denied call of p; past the budget p is blocked until
// the window ends. A store failure is logged, not returned: the call was
// refused anyway.
func (l *refusals) denied(ctx context.Context, p auth.Principal) {
	if l == nil || p.Subject == "" {
		return
	}
	l.counted.WithLabelValues(string(store.OutcomeDenied)).Inc()
	now := l.now()
	ok, retryAfter, err := l.limit.Throttle.Allow(ctx, refusalKey(p), l.limit.Limit, l.limit.Window, now)
	if err != nil {
		l.log.WarnContext(ctx, "audit refusal budget: counting failed", "error", err.Error())
		return
	}
	if ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.blocked) >= 4096 {
		for k, until := range l.blocked {
			if !now.Before(until) {
				delete(l.blocked, k)
			}
		}
	}
	l.blocked[refusalKey(p)] = now.Add(retryAfter)
}

package dispatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the dispatcher, exported so dashboards, alerts and tests
// refer to one spelling. Labels: kind is a store.ReminderKind (dose,
// refill, follow_up, missed_dose); nothing names a patient or a device.
const (
	// MetricDue counts reminders claimed for the first time (due now).
	MetricDue = "mtm_reminders_due_total"
	// MetricSent counts reminders at least one of whose pushes FCM
	// accepted.
	MetricSent = "mtm_reminders_sent_total"
	// MetricUnsent counts claimed reminders that were not sent, by
	// reason: obsolete (taken, skipped, schedule changed, patient gone),
	// no_device, deferred (quiet hours, snooze), retry (push failed,
	// tried again later), refused (FCM refused every push).
	MetricUnsent = "mtm_reminders_unsent_total"
	// MetricLateness observes, per sent reminder, seconds from its due
	// time to the send (a reminder taken over after a crash keeps its
	// first due time; one retried after a push failure counts from the
	// retry).
	MetricLateness = "mtm_reminder_lateness_seconds"
	// MetricTakeovers counts reminders claimed after another claim's
	// lease ran out unsettled: a dispatcher died, lost the store for
	// longer than the lease, or could not load the batch's records.
	MetricTakeovers = "mtm_reminder_lease_takeovers_total"
	// MetricLeasesLost counts reminders whose lease this dispatcher lost
	// while still working them (renewal found them no longer leased):
	// another dispatcher may send them too.
	MetricLeasesLost = "mtm_reminder_leases_lost_total"
	// MetricRenewFailures counts lease renewals the store did not answer.
	MetricRenewFailures = "mtm_reminder_lease_renewal_failures_total"
	// MetricSettleRetries counts settle attempts that failed and were
	// retried (the pushes were sent; only the bookkeeping waited).
	MetricSettleRetries = "mtm_reminder_settle_retries_total"
	// MetricBatchFailures counts batches that failed, by step: claim,
	// load (the batch comes back when its lease ends) or settle (given up:
	// the batch is re-sent when its lease ends).
	MetricBatchFailures = "mtm_reminder_batch_failures_total"
	// MetricBatchDuration observes seconds from claim to settle per batch
	// (compare with the lease and renewal settings).
	MetricBatchDuration = "mtm_reminder_batch_duration_seconds"
)

// latenessBuckets span on time (under a second) to an hour late, with
// detail around the 30 s takeover target.
var latenessBuckets = []float64{0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600, 1800, 3600}

var batchBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120}

type metrics struct {
	due, sent      *prometheus.CounterVec
	unsent         *prometheus.CounterVec
	lateness       *prometheus.HistogramVec
	takeovers      prometheus.Counter
	leasesLost     prometheus.Counter
	renewFailures  prometheus.Counter
	settleRetries  prometheus.Counter
	batchFailures  *prometheus.CounterVec
	batchDurations prometheus.Histogram
}

// newMetrics builds the dispatcher's collectors and registers them on reg
// when it is not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		due: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDue,
			Help: "Reminders claimed for the first time, by kind."}, []string{"kind"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricSent,
			Help: "Reminders with at least one push accepted by FCM, by kind."}, []string{"kind"}),
		unsent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricUnsent,
			Help: "Claimed reminders not sent, by kind and reason (obsolete, no_device, deferred, retry, refused)."}, []string{"kind", "reason"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricLateness,
			Help: "Seconds from a reminder's due time to its push, by kind.", Buckets: latenessBuckets}, []string{"kind"}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricTakeovers,
			Help: "Reminders claimed after another claim's lease ran out unsettled."}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricLeasesLost,
			Help: "Reminders whose lease ran out while this dispatcher still worked them."}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRenewFailures,
			Help: "Lease renewals that failed (store unavailable)."}),
		settleRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricSettleRetries,
			Help: "Settle attempts that failed and were retried."}),
		batchFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBatchFailures,
			Help: "Reminder batches that failed, by step (claim, load, settle)."}, []string{"step"}),
		batchDurations: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricBatchDuration,
			Help: "Seconds from claiming a batch to settling it.", Buckets: batchBuckets}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.due, m.sent, m.unsent, m.lateness, m.takeovers, m.leasesLost, m.renewFailures,
		m.settleRetries, m.batchFailures, m.batchDurations} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("dispatch metrics: %w", err)
		}
	}
	return m, nil
}

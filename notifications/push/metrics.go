package push

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the FCM sender, exported so dashboards, alerts and
// tests refer to one spelling.
const (
	// MetricResponses counts FCM's answers, one per message per attempt,
	// by code (CodeOK for accepted).
	MetricResponses = "mtm_push_responses_total"
	// MetricResults counts messages by their final outcome in one Send
	// (sent, retry, invalid_token: device deleted, failed: device kept)
	// and the code that decided it.
	MetricResults = "mtm_push_results_total"
	// MetricPaused is 1 while QUOTA_EXCEEDED pauses the whole sender.
	MetricPaused = "mtm_push_sender_paused"
	// MetricPauses counts those pauses.
	MetricPauses = "mtm_push_sender_pauses_total"
)

type metrics struct {
	responses *prometheus.CounterVec
	results   *prometheus.CounterVec
	pauses    prometheus.Counter
}

// newMetrics builds the sender's collectors and registers them (and the
// paused gauge, read from paused at scrape time) on reg when it is not nil.
func newMetrics(reg prometheus.Registerer, paused func() float64) (*metrics, error) {
	m := &metrics{
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricResponses,
			Help: "FCM answers, one per message per attempt, by FCM error code (OK when accepted)."}, []string{"code"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricResults,
			Help: "Pushes by final outcome (sent, retry, invalid_token: device deleted, failed: device kept) and FCM code."}, []string{"outcome", "code"}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricPauses,
			Help: "Times QUOTA_EXCEEDED paused the whole FCM sender."}),
	}
	if reg == nil {
		return m, nil
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricPaused,
		Help: "1 while the FCM sender is paused after QUOTA_EXCEEDED, else 0."}, paused)
	for _, c := range []prometheus.Collector{m.responses, m.results, m.pauses, gauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("push metrics: %w", err)
		}
	}
	return m, nil
}

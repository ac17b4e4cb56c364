package loadtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency range the histograms track: 1 µs to 60 s with 3 significant
// digits. Longer observations are clamped to the top.
const (
	minTrackable = int64(time.Microsecond)
	maxTrackable = int64(60 * time.Second)
)

// Recorder collects latencies and outcomes per operation (an RPC procedure
// or a derived measurement such as "send→watcher"). It is safe for
// concurrent use.
type Recorder struct {
	mu  sync.Mutex
	ops map[string]*opStats
}

type opStats struct {
	hist   *hdrhistogram.Histogram
	errors map[string]int64
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{ops: map[string]*opStats{}} }

// Observe records one operation that took d and ended with err (nil for
// success). Errors are counted by Connect code ("deadline_exceeded",
// "unavailable", …); an error without a code counts as "unknown". Failed
// operations do not enter the latency histogram.
func (r *Recorder) Observe(op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.ops[op]
	if s == nil {
		s = &opStats{hist: hdrhistogram.New(minTrackable, maxTrackable, 3), errors: map[string]int64{}}
		r.ops[op] = s
	}
	if err != nil {
		s.errors[ErrorCode(err)]++
		return
	}
	v := int64(d)
	v = max(v, minTrackable)
	v = min(v, maxTrackable)
	_ = s.hist.RecordValue(v) // in range by construction
}

// ErrorCode names err's Connect code, "canceled" for a cancelled context and
// "unknown" otherwise.
func ErrorCode(err error) string {
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		return ce.Code().String()
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled.String()
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded.String()
	}
	return connect.CodeUnknown.String()
}

// OpStats is what a Recorder knows about one operation.
type OpStats struct {
	Name   string           `json:"name"`
	OK     int64            `json:"ok"`
	Errors map[string]int64 `json:"errors,omitempty"`
	// Latencies of successful calls, in milliseconds.
	P50Ms  float64 `json:"p50_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
	// PerSec is calls per second over the phase (set by Runner.Results).
	PerSec float64 `json:"per_sec"`
	// RateVsBaseline is PerSec over the baseline's, when the phase makes
	// only this call; P99VsBaseline is P99Ms over the baseline's.
	RateVsBaseline float64 `json:"rate_vs_baseline,omitempty"`
	P99VsBaseline  float64 `json:"p99_vs_baseline,omitempty"`
	// RateVsFloor is PerSec over the bare handler's calls/s, P99VsFloor
	// P99Ms over its p99 (Runner.Floor).
	RateVsFloor float64 `json:"rate_vs_floor,omitempty"`
	P99VsFloor  float64 `json:"p99_vs_floor,omitempty"`
}

// Total is the number of calls, successful or not.
func (s OpStats) Total() int64 {
	n := s.OK
	for _, e := range s.Errors {
		n += e
	}
	return n
}

// ErrorCount is the number of failed calls.
func (s OpStats) ErrorCount() int64 { return s.Total() - s.OK }

// Snapshot returns the statistics of every operation, sorted by name.
func (r *Recorder) Snapshot() []OpStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]OpStats, 0, len(r.ops))
	for name, s := range r.ops {
		ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
		st := OpStats{
			Name:   name,
			OK:     s.hist.TotalCount(),
			P50Ms:  ms(s.hist.ValueAtQuantile(50)),
			P95Ms:  ms(s.hist.ValueAtQuantile(95)),
			P99Ms:  ms(s.hist.ValueAtQuantile(99)),
			MaxMs:  ms(s.hist.Max()),
			MeanMs: s.hist.Mean() / float64(time.Millisecond),
		}
		if len(s.errors) > 0 {
			st.Errors = make(map[string]int64, len(s.errors))
			for k, v := range s.errors {
				st.Errors[k] = v
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b OpStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Count is the number of operations observed so far, successful or not.
func (r *Recorder) Count() (total, failed int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.ops {
		total += s.hist.TotalCount()
		for _, e := range s.errors {
			total += e
			failed += e
		}
	}
	return total, failed
}

// Interceptor returns a client interceptor that times every unary call
// into the Recorder carried by the call's context (WithRecorder), under the
// procedure's short name ("PatientService/GetMedicationList"). Calls whose
// context carries no Recorder are not measured. Streams are measured by the
// scenarios that open them.
func Interceptor() connect.Interceptor { return recordingInterceptor{} }

type recordingInterceptor struct{}

type recorderKey struct{}

// WithRecorder returns ctx carrying r, for Interceptor and scenarios.
func WithRecorder(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, r)
}

// RecorderFrom returns the Recorder ctx carries, or nil.
func RecorderFrom(ctx context.Context) *Recorder {
	r, _ := ctx.Value(recorderKey{}).(*Recorder)
	return r
}

// ShortName turns "/mtm.v1.PatientService/GetMedicationList" into
// "PatientService/GetMedicationList".
func ShortName(procedure string) string {
	p := strings.TrimPrefix(procedure, "/")
	if i := strings.LastIndex(p[:max(strings.Index(p, "/"), 0)], "."); i >= 0 {
		p = p[i+1:]
	}
	return p
}

func (i recordingInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		rec := RecorderFrom(ctx)
		if rec == nil {
			return next(ctx, req)
		}
		start := time.Now()
		res, err := next(ctx, req)
		rec.Observe(ShortName(req.Spec().Procedure), time.Since(start), err)
		return res, err
	}
}

func (i recordingInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i recordingInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

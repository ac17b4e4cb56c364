package telemetry

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// FoldConfig says which log lines FoldRepeats folds.
type FoldConfig struct {
	// Messages are the log messages to fold (e.g. "reminder batch
	// failed"); other records pass through untouched.
	Messages []string
	// Interval is how long repeats are counted before one summary line.
	Interval time.Duration
	// AfterFunc schedules f after d; nil means time.AfterFunc. Tests
	// inject their own to run the summary without waiting.
	AfterFunc func(d time.Duration, f func())
}

// FoldRepeats returns a handler that writes to next, except that a message
// named in cfg.Messages that keeps recurring is written once and then
// summarized: the first record goes out at once; repeats within the
// following cfg.Interval are counted, and when the interval ends one
// record with the same message, the attributes of the latest repeat and
// "repeated" (the count) and "interval" goes out. While repeats keep
// coming, every interval gives one summary; after a quiet interval the next
// record is written at once again. So an outage that fails a batch per
// shard every second logs one line per interval, not hundreds, and still
// says how often it happened.
func FoldRepeats(next slog.Handler, cfg FoldConfig) slog.Handler {
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	return &foldHandler{next: next, state: &foldState{cfg: cfg, open: map[string]*foldWindow{}}}
}

type foldHandler struct {
	next  slog.Handler
	state *foldState // shared by the handlers WithAttrs/WithGroup derive
}

type foldState struct {
	cfg  FoldConfig
	mu   sync.Mutex
	open map[string]*foldWindow // by message
}

// foldWindow is one message's current interval.
type foldWindow struct {
	count   int
	last    slog.Record
	handler slog.Handler // the handler (with its attrs) of the latest repeat
}

func (h *foldHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *foldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &foldHandler{next: h.next.WithAttrs(as), state: h.state}
}

func (h *foldHandler) WithGroup(name string) slog.Handler {
	return &foldHandler{next: h.next.WithGroup(name), state: h.state}
}

func (h *foldHandler) Handle(ctx context.Context, r slog.Record) error {
	s := h.state
	if !slices.Contains(s.cfg.Messages, r.Message) {
		return h.next.Handle(ctx, r)
	}
	s.mu.Lock()
	if w, ok := s.open[r.Message]; ok {
		w.count++
		w.last, w.handler = r.Clone(), h.next
		s.mu.Unlock()
		return nil
	}
	s.open[r.Message] = &foldWindow{}
	s.mu.Unlock()
	s.cfg.AfterFunc(s.cfg.Interval, func() { s.endInterval(r.Message) })
	return h.next.Handle(ctx, r)
}

// endInterval writes the summary of msg's interval and starts the next
// one, or closes the window when nothing repeated.
func (s *foldState) endInterval(msg string) {
	s.mu.Lock()
	w := s.open[msg]
	if w == nil || w.count == 0 {
		delete(s.open, msg)
		s.mu.Unlock()
		return
	}
	count, last, handler := w.count, w.last, w.handler
	w.count = 0
	s.mu.Unlock()

	sum := slog.NewRecord(time.Now(), last.Level, msg, last.PC)
	last.Attrs(func(a slog.Attr) bool {
		sum.AddAttrs(a)
		return true
	})
	sum.AddAttrs(slog.Int("repeated", count), slog.String("interval", s.cfg.Interval.String()))
	_ = handler.Handle(context.Background(), sum)
	s.cfg.AfterFunc(s.cfg.Interval, func() { s.endInterval(msg) })
}

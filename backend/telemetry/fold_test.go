package telemetry_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/telemetry"
)

// TestFoldRepeats: an outage that fails a reminder batch per shard many
// times a second logs its first failure at once and then one summary per
// interval with the count, and nothing else is held back.
func TestFoldRepeats(t *testing.T) {
	var out bytes.Buffer
	var timers []func()
	log := slog.New(telemetry.FoldRepeats(slog.NewJSONHandler(&out, nil), telemetry.FoldConfig{
		Messages:  []string{"reminder batch failed"},
		Interval:  30 * time.Second,
		AfterFunc: func(d time.Duration, f func()) { timers = append(timers, f) },
	}))
	lines := func() []map[string]any {
		t.Helper()
		var got []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			got = append(got, m)
		}
		out.Reset()
		return got
	}
	fire := func() {
		t.Helper()
		if len(timers) == 0 {
			t.Fatal("no interval is running")
		}
		f := timers[0]
		timers = timers[1:]
		f()
	}
	fail := func(n int) {
		for i := range n {
			log.With("worker", 1).Warn("reminder batch failed", "shard", i%16, "error", "store: unavailable")
		}
	}

	fail(40)
	log.Info("mtmd serving")
	got := lines()
	if len(got) != 2 || got[0]["msg"] != "reminder batch failed" || got[0]["repeated"] != nil || got[1]["msg"] != "mtmd serving" {
		t.Fatalf("40 failures and one other line wrote %v, want the first failure and the other line", got)
	}

	fire()
	got = lines()
	if len(got) != 1 || got[0]["repeated"] != float64(39) || got[0]["interval"] != "30s" || got[0]["shard"] != float64(39%16) || got[0]["worker"] != float64(1) {
		t.Fatalf("summary after the interval = %v, want one line with repeated=39 and the latest failure's attributes", got)
	}

	fail(5)
	if got = lines(); len(got) != 0 {
		t.Fatalf("repeats in the next interval wrote %v at once, want them folded", got)
	}
	fire()
	if got = lines(); len(got) != 1 || got[0]["repeated"] != float64(5) {
		t.Fatalf("second summary = %v, want repeated=5", got)
	}

	fire() // a quiet interval closes the window
	if got = lines(); len(got) != 0 {
		t.Fatalf("a quiet interval wrote %v", got)
	}
	if len(timers) != 0 {
		t.Fatalf("%d intervals still running after a quiet one", len(timers))
	}
	fail(1)
	if got = lines(); len(got) != 1 || got[0]["repeated"] != nil {
		t.Fatalf("first failure after the quiet interval = %v, want it written at once", got)
	}
}

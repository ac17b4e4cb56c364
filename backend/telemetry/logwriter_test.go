package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingWriter keeps every write it gets, as a separate chunk.
type recordingWriter struct {
	mu     sync.Mutex
	writes []string
	fail   error
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *recordingWriter) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.writes, "")
}

func (w *recordingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.writes)
}

// newTestLogWriter returns a LogWriter of size bytes flushed by sends on
// the returned channel (each send returns once the flush it caused is
// done or under way).
func newTestLogWriter(t *testing.T, out *recordingWriter, size int) (*LogWriter, chan<- time.Time) {
	t.Helper()
	tick := make(chan time.Time)
	l := newLogWriter(out, tick, func() {}, size)
	t.Cleanup(func() { _ = l.Close() })
	return l, tick
}

func TestLogWriterBatchesLinesInOrder(t *testing.T) {
	out := &recordingWriter{}
	l, _ := newTestLogWriter(t, out, 1024)
	var want strings.Builder
	for i := range 10 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if n, err := l.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if out.count() != 0 {
		t.Fatalf("%d writes before any flush, want the lines held", out.count())
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if out.count() != 1 || out.all() != want.String() {
		t.Fatalf("after Flush: %d writes %q, want one write %q", out.count(), out.all(), want.String())
	}
}

func TestLogWriterWritesWholeLinesWhenFull(t *testing.T) {
	out := &recordingWriter{}
	l, _ := newTestLogWriter(t, out, 32)
	lines := []string{"first line 0123456789\n", "second line 0123456789\n", strings.Repeat("long ", 10) + "\n", "last\n"}
	for _, line := range lines {
		_, _ = l.Write([]byte(line))
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.all(); got != strings.Join(lines, "") {
		t.Fatalf("got %q, want every line in order", got)
	}
	for _, w := range out.writes {
		if !strings.HasSuffix(w, "\n") {
			t.Errorf("write %q splits a line", w)
		}
	}
}

func TestLogWriterFlushesOnTick(t *testing.T) {
	out := &recordingWriter{}
	l, tick := newTestLogWriter(t, out, 1024)
	_, _ = l.Write([]byte("tailed\n"))
	tick <- time.Time{} // the flusher took it
	tick <- time.Time{} // and finished the flush it caused
	if got := out.all(); got != "tailed\n" {
		t.Fatalf("after a tick the destination has %q, want the line", got)
	}
}

func TestLogWriterCloseFlushesThenWritesThrough(t *testing.T) {
	out := &recordingWriter{}
	l, _ := newTestLogWriter(t, out, 1024)
	_, _ = l.Write([]byte("before close\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.all(); got != "before close\n" {
		t.Fatalf("after Close: %q, want the buffered line", got)
	}
	_, _ = l.Write([]byte("after close\n"))
	if got := out.all(); got != "before close\nafter close\n" {
		t.Fatalf("a line written after Close is not out at once: %q", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestLogWriterWriteThroughKeepsOrder(t *testing.T) {
	out := &recordingWriter{}
	l, _ := newTestLogWriter(t, out, 1024)
	_, _ = l.Write([]byte("log 1\n"))
	if _, err := l.WriteThrough().Write([]byte("audit\n")); err != nil {
		t.Fatal(err)
	}
	if got := out.all(); got != "log 1\naudit\n" {
		t.Fatalf("after a write-through write: %q, want the buffered line, then it", got)
	}
	out.fail = errors.New("disk full")
	if _, err := l.WriteThrough().Write([]byte("audit 2\n")); err == nil {
		t.Error("write-through write to a failing destination returned no error")
	}
}

func TestLogWriterReportsFailedFlush(t *testing.T) {
	out := &recordingWriter{fail: errors.New("disk full")}
	l, _ := newTestLogWriter(t, out, 1024)
	if _, err := l.Write([]byte("lost\n")); err != nil {
		t.Fatalf("Write = %v, want nil (a log write never fails)", err)
	}
	if err := l.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush = %v, want the destination's error", err)
	}
	out.fail = nil
	_, _ = l.Write([]byte("next\n"))
	_ = l.Flush()
	if got := out.all(); got != "next\n" {
		t.Errorf("after a failed flush: %q, want only the later line (no retry of stale lines)", got)
	}
}

func TestLogWriterConcurrentLinesStayWhole(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	dest := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	l := newLogWriter(dest, make(chan time.Time), func() {}, 256)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				_, _ = fmt.Fprintf(l, "goroutine %d line %03d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	next := map[int]int{}
	for _, line := range lines {
		var g, i int
		if _, err := fmt.Sscanf(line, "goroutine %d line %d", &g, &i); err != nil {
			t.Fatalf("mangled line %q", line)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

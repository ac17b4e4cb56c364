package telemetry

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// logBufferBytes is how much a LogWriter holds before it writes: about two
// hundred access lines, one system call.
const logBufferBytes = 64 << 10

// LogWriter passes log lines to a file, pipe or terminal in batches, so
// that a busy server makes one write system call per few hundred lines
// rather than one per line. What it is given reaches the destination in
// the order given, as whole writes (a line is never split unless it is
// larger than the buffer): when the buffer would overflow, at least every
// flush interval, on Flush, and on Close. After Close it writes straight
// through, so that lines logged during the last steps of a shutdown are
// not lost. A crash of the process (not a clean shutdown) can lose what
// was written during the last interval.
//
// Write never fails: like the unbuffered writer it replaces under a
// slog handler (which drops the error), a failed write loses its lines;
// Flush and Close report the error.
//
// It is safe for concurrent use.
type LogWriter struct {
	mu     sync.Mutex
	out    io.Writer
	buf    []byte
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewLogWriter returns a LogWriter that writes to out at least every
// interval (which must be positive) until Close.
func NewLogWriter(out io.Writer, interval time.Duration) (*LogWriter, error) {
	if out == nil || interval <= 0 {
		return nil, fmt.Errorf("telemetry.NewLogWriter: need a writer and a positive interval, got %v", interval)
	}
	t := time.NewTicker(interval)
	return newLogWriter(out, t.C, t.Stop, logBufferBytes), nil
}

// newLogWriter starts a LogWriter that flushes on every tick and calls
// stopTicks when it is closed.
func newLogWriter(out io.Writer, tick <-chan time.Time, stopTicks func(), size int) *LogWriter {
	l := &LogWriter{out: out, buf: make([]byte, 0, size), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushEvery(tick, stopTicks)
	return l
}

func (l *LogWriter) flushEvery(tick <-chan time.Time, stopTicks func()) {
	defer close(l.done)
	defer stopTicks()
	for {
		select {
		case <-l.stop:
			return
		case <-tick:
			_ = l.Flush()
		}
	}
}

// Write buffers p; it always returns len(p), nil.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_, _ = l.out.Write(p)
		return len(p), nil
	}
	if len(l.buf)+len(p) > cap(l.buf) {
		_ = l.flushLocked()
		if len(p) >= cap(l.buf) {
			_, _ = l.out.Write(p)
			return len(p), nil
		}
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// Flush writes what is buffered and returns the write's error.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *LogWriter) flushLocked() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.out.Write(l.buf)
	l.buf = l.buf[:0]
	if err != nil {
		return fmt.Errorf("telemetry.LogWriter: writing logs: %w", err)
	}
	return nil
}

// Close writes what is buffered, stops the periodic flush and makes later
// writes go straight through. It does not close the destination. Calling
// it again does nothing.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	err := l.flushLocked()
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return err
}

// WriteThrough returns a writer onto the same destination for lines that
// must have reached it when Write returns (an audit archive on stdout):
// each write first writes what is buffered, so that all lines keep their
// order, and returns the error of writing p.
func (l *LogWriter) WriteThrough() io.Writer { return writeThrough{l} }

type writeThrough struct{ l *LogWriter }

func (w writeThrough) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	_ = w.l.flushLocked()
	return w.l.out.Write(p)
}

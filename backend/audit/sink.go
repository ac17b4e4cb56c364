package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// WriterSink writes one JSON line per event to w (stdout for a log
// pipeline). Writes are serialized.
type WriterSink struct {
	mu sync.Mutex
	w  io.Writer
	// last is the error of the latest write (nil after a success).
	last error
}

// NewWriterSink returns a sink writing JSON lines to w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

// Write implements Sink.
func (s *WriterSink) Write(_ context.Context, ev store.AuditEvent) error {
	line, err := eventLine(ev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.w.Write(line)
	s.last = err
	return err
}

// Check reports whether the sink can take events: the error of the latest
// write, nil when it succeeded or none was made. A writer cannot be probed
// without writing to it.
func (s *WriterSink) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last != nil {
		return fmt.Errorf("audit archive: last write failed: %w", s.last)
	}
	return nil
}

// Close implements Sink; it does not close w.
func (s *WriterSink) Close() error { return nil }

// FileSink appends JSON lines to files in a directory, starting a new file
// when the current one passes MaxBytes. Files are never rewritten; an
// operator ships and removes old ones. Each write reaches the operating
// system before Write returns; Sync bounds what a machine crash can lose.
//
// Concurrent writes share one write to the file: the lines that arrive
// while a write runs go out together in the next one, and each Write still
// returns only once its own line has reached the operating system.
type FileSink struct {
	dir      string
	maxBytes int64
	now      func() time.Time

	// fileMu is held while the file is written, rotated, synced or
	// closed: it guards f, size and seq.
	fileMu sync.Mutex
	f      *os.File
	size   int64
	seq    int

	// mu guards pending: the lines waiting for the next write.
	mu      sync.Mutex
	pending *lineBatch
}

// lineBatch is lines that go to the file in one write; done closes once it
// is written (or failed with err).
type lineBatch struct {
	buf  []byte
	done chan struct{}
	err  error
}

// NewFileSink opens a rotating JSON-lines sink in dir (created 0700).
// maxBytes ≤ 0 means 64 MiB.
func NewFileSink(dir string, maxBytes int64, now func() time.Time) (*FileSink, error) {
	if maxBytes <= 0 {
		maxBytes = 64 << 20
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit.NewFileSink: %w", err)
	}
	s := &FileSink{dir: dir, maxBytes: maxBytes, now: now}
	if err := s.rotate(); err != nil {
		return nil, fmt.Errorf("audit.NewFileSink: %w", err)
	}
	return s, nil
}

func (s *FileSink) rotate() error {
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return err
		}
		if err := s.f.Close(); err != nil {
			return err
		}
	}
	// A new file every time, never an existing one reopened: a process
	// started again within the same second (a restart, a second instance
	// on the same directory) takes the next sequence number.
	stamp := s.now().UTC().Format("20060102T150405Z")
	for range 1000 {
		s.seq++
		name := fmt.Sprintf("audit-%s-%03d.jsonl", stamp, s.seq)
		f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return err
		}
		s.f, s.size = f, 0
		return nil
	}
	return fmt.Errorf("audit: no free file name for %s in %s", stamp, s.dir)
}

// Write implements Sink.
func (s *FileSink) Write(_ context.Context, ev store.AuditEvent) error {
	line, err := eventLine(ev)
	if err != nil {
		return err
	}
	s.mu.Lock()
	b := s.pending
	if b == nil {
		b = &lineBatch{done: make(chan struct{})}
		s.pending = b
	}
	b.buf = append(b.buf, line...)
	s.mu.Unlock()

	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	select {
	case <-b.done:
		// Another writer of the batch wrote it while this one waited.
		return b.err
	default:
	}
	// The first of the batch to get the file takes the batch (it is still
	// pending: only a holder of fileMu takes one, and closes it before
	// letting go), so lines arriving from now on start the next one.
	s.mu.Lock()
	s.pending = nil
	s.mu.Unlock()
	b.err = s.writeLines(b.buf)
	close(b.done)
	return b.err
}

// writeLines appends whole lines to the current file, rotating first when
// they would take it past maxBytes; fileMu is held.
func (s *FileSink) writeLines(lines []byte) error {
	if s.size+int64(len(lines)) > s.maxBytes && s.size > 0 {
		if err := s.rotate(); err != nil {
			return fmt.Errorf("audit: rotate: %w", err)
		}
	}
	n, err := s.f.Write(lines)
	if err != nil && n > 0 {
		// A short write (disk full) must not leave part of a line that the
		// next event would be glued to: cut it off, or start a new file.
		if terr := s.f.Truncate(s.size); terr != nil {
			if rerr := s.rotate(); rerr != nil {
				s.size += int64(n)
			}
		}
	} else {
		s.size += int64(n)
	}
	return err
}

// Check reports whether the sink can take events now: it creates, writes,
// syncs and removes a probe file in the archive's directory (not in the
// archive itself), so a full or read-only disk fails it.
func (s *FileSink) Check(context.Context) error {
	f, err := os.CreateTemp(s.dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("audit archive %s: %w", s.dir, err)
	}
	_, err = f.Write([]byte("probe\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("audit archive %s: %w", s.dir, err)
	}
	return nil
}

// Sync flushes the current file to stable storage.
func (s *FileSink) Sync() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	return s.f.Sync()
}

// Close syncs and closes the current file.
func (s *FileSink) Close() error {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	if err := s.f.Sync(); err != nil {
		return err
	}
	return s.f.Close()
}

// eventJSON is the archive's line format; field names are part of the
// operators' contract.
type eventJSON struct {
	ID        string `json:"id"`
	Time      string `json:"time"` // RFC 3339 with nanoseconds, UTC: what time.Time's MarshalJSON writes, without its validation pass
	ActorID   string `json:"actor_id"`
	ActorRole string `json:"actor_role"`
	PatientID string `json:"patient_id"`
	Procedure string `json:"procedure"`
	Object    string `json:"object,omitempty"`
	Allowed   bool   `json:"allowed"`
	Outcome   string `json:"outcome"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
	Client    string `json:"client_addr,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

func eventLine(ev store.AuditEvent) ([]byte, error) {
	b, err := json.Marshal(eventJSON{
		ID: ev.ID, Time: ev.Time.UTC().Format(time.RFC3339Nano), ActorID: ev.ActorID, ActorRole: string(ev.ActorRole), PatientID: ev.PatientID,
		Procedure: ev.Procedure, Object: ev.Object, Allowed: ev.Allowed, Outcome: string(ev.EffectiveOutcome()), Code: ev.Code, RequestID: ev.RequestID,
		Client: ev.ClientAddr, Reason: ev.Reason,
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

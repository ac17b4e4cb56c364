package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// TestConcurrentAuditAppendsKeepAnExactWindow: many reads of one patient
// audited at once (so their appends share commits) leave exactly the
// newest keep events, and the kept-count agrees with what is stored, even
// when writes that fail are mixed into the same groups and force the rest
// to run again.
func TestConcurrentAuditAppendsKeepAnExactWindow(t *testing.T) {
	cases := []struct {
		name    string
		writers int
		keep    int
		failing int // failing writes injected into the same commit groups
	}{
		{"below the window", 200, 1000, 0},
		{"past the window", 300, 50, 0},
		{"past the window with failing writes", 300, 50, 60},
		{"one slot", 100, 1, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "mtm.db"), Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := context.Background()
			base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
			errInjected := errors.New("injected")

			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range tc.writers {
				wg.Go(func() {
					<-start
					ev := store.AuditEvent{ID: fmt.Sprintf("%016x", i), Time: base.Add(time.Duration(i)), PatientID: "pat-1",
						ActorID: "acc-1", Procedure: "/mtm.v1.PatientService/GetMedicationList", Allowed: true, Code: "ok"}
					if err := s.AppendAuditEvent(ctx, ev, tc.keep); err != nil {
						t.Errorf("AppendAuditEvent %d: %v", i, err)
					}
				})
			}
			for range tc.failing {
				wg.Go(func() {
					<-start
					err := s.writes.update(func(tx *bbolt.Tx) error {
						if err := tx.Bucket(bucketAuditCounts).Put([]byte("pat-1"), []byte("garbage!")); err != nil {
							return err
						}
						return errInjected
					})
					if !errors.Is(err, errInjected) {
						t.Errorf("failing write returned %v, want its own error", err)
					}
				})
			}
			close(start)
			wg.Wait()

			want := min(tc.writers, tc.keep)
			evs, err := s.ListAuditEvents(ctx, "pat-1", "", tc.writers+1)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != want {
				t.Fatalf("window holds %d events, want %d", len(evs), want)
			}
			for k, ev := range evs {
				if wantID := fmt.Sprintf("%016x", tc.writers-1-k); ev.ID != wantID {
					t.Fatalf("event %d is %s, want %s (the newest %d)", k, ev.ID, wantID, want)
				}
			}
			var counted uint64
			if err := s.db.View(func(tx *bbolt.Tx) error {
				counted = binary.BigEndian.Uint64(tx.Bucket(bucketAuditCounts).Get([]byte("pat-1")))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if counted != uint64(want) {
				t.Fatalf("kept-count says %d, window holds %d", counted, want)
			}
		})
	}
}

// TestGroupCommitSurvivesAPanickingWrite: a write that panics fails alone;
// the writes grouped with it are committed and nobody is left waiting.
func TestGroupCommitSurvivesAPanickingWrite(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "mtm.db"), Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.writes.update(func(tx *bbolt.Tx) error {
				if i%10 == 3 {
					panic("boom")
				}
				return tx.Bucket(bucketAuditCounts).Put(fmt.Appendf(nil, "k%02d", i), []byte("v"))
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 3) != (err != nil) {
			t.Errorf("write %d: err %v", i, err)
		}
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		for i := range errs {
			if got := tx.Bucket(bucketAuditCounts).Get(fmt.Appendf(nil, "k%02d", i)); (got != nil) == (i%10 == 3) {
				t.Errorf("write %d stored: %v", i, got != nil)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/storetest"
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
			s := openNoSync(t)
			ctx := context.Background()
			base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

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
			failWrites(t, s, &wg, start, tc.failing, bucketAuditCounts)
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
				counted = tx.Bucket(bucketAudit).Bucket([]byte("pat-1")).Sequence()
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
	s := openNoSync(t)
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
	err := s.db.View(func(tx *bbolt.Tx) error {
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

// TestConcurrentWritesOfEveryKindShareCommits: record updates, rate-limit
// counts and failing writes from many goroutines at once (so that they
// share commits, and the failures make the others of their group run
// again) lose nothing and count nothing twice: every update is in the
// record once with its own version, and the counter holds exactly the
// attempts made.
func TestConcurrentWritesOfEveryKindShareCommits(t *testing.T) {
	s := openNoSync(t)
	ctx := context.Background()
	sample := storetest.SamplePatient("pat-1", "ph-1", 2)
	if err := s.CreatePatient(ctx, sample); err != nil {
		t.Fatal(err)
	}
	const updates, attempts, failing = 90, 150, 90
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	versions := make([]int64, updates)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range updates {
		wg.Go(func() {
			<-start
			p, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
				p.Allergies = append(p.Allergies, store.Allergy{ID: fmt.Sprintf("al-%03d", i), Kind: store.KindAllergy, Substance: "penicillin", RecordedAt: now})
				return p, nil
			})
			if err != nil {
				t.Errorf("UpdatePatient %d: %v", i, err)
			}
			versions[i] = p.Version
		})
	}
	for i := range attempts {
		wg.Go(func() {
			<-start
			if ok, _, err := s.Allow(ctx, "login:ana@example.org", 10*attempts, time.Hour, now); err != nil || !ok {
				t.Errorf("Allow %d: %v, %v", i, ok, err)
			}
		})
	}
	failWrites(t, s, &wg, start, failing, bucketPatients)
	// A write that holds the commit until the others have queued behind
	// it, so that they form large groups with failing writes among them
	// (one that has not queued by then only lands in a smaller group).
	entered, release := make(chan struct{}), make(chan struct{})
	wg.Go(func() {
		if err := s.update(ctx, func(*bbolt.Tx) error { close(entered); <-release; return nil }); err != nil {
			t.Errorf("holding write: %v", err)
		}
	})
	<-entered
	close(start)
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()

	p, err := s.GetPatient(ctx, "pat-1")
	if err != nil {
		t.Fatal(err)
	}
	added := p.Allergies[min(len(sample.Allergies), len(p.Allergies)):]
	if p.Version != 1+updates || len(added) != updates {
		t.Fatalf("record at version %d with %d allergies added, want version %d with %d", p.Version, len(added), 1+updates, updates)
	}
	seen := map[string]bool{}
	for _, a := range added {
		seen[a.ID] = true
	}
	if len(seen) != updates {
		t.Fatalf("%d distinct updates in the record, want %d", len(seen), updates)
	}
	slices.Sort(versions)
	for k, v := range versions {
		if v != int64(k)+2 {
			t.Fatalf("update versions %v, want 2…%d each once", versions, updates+1)
		}
	}
	// The counter holds exactly the attempts made: one more fits a limit
	// of attempts+1, the next does not.
	for k, want := range []bool{true, false} {
		if ok, _, err := s.Allow(ctx, "login:ana@example.org", attempts+1, time.Hour, now); err != nil || ok != want {
			t.Fatalf("attempt %d after the concurrent ones: allowed %v (%v), want %v", attempts+1+k, ok, err, want)
		}
	}
}

// failWrites starts n writes on wg that, once start is closed, overwrite
// pat-1 in bucket with garbage and then fail: their groups are rolled back
// and the other writes in them run again.
func failWrites(t *testing.T, s *Store, wg *sync.WaitGroup, start <-chan struct{}, n int, bucket []byte) {
	t.Helper()
	errInjected := errors.New("injected")
	for range n {
		wg.Go(func() {
			<-start
			err := s.update(context.Background(), func(tx *bbolt.Tx) error {
				if err := tx.Bucket(bucket).Put([]byte("pat-1"), []byte("garbage!")); err != nil {
					return err
				}
				return errInjected
			})
			if !errors.Is(err, errInjected) {
				t.Errorf("failing write returned %v, want its own error", err)
			}
		})
	}
}

package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// TestAuditWindowsOfTheOlderForm: a window whose kept-count sits in the
// counts bucket (as every window did before the count moved into the
// window bucket's sequence) goes on being trimmed at keep, for accesses
// and refusals alike, and its old entry is gone after the first append.
func TestAuditWindowsOfTheOlderForm(t *testing.T) {
	s := openNoSync(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	const keep = 5
	for _, w := range []struct {
		name           string
		window, counts []byte
		code           string
	}{
		{"accesses", bucketAudit, bucketAuditCounts, "ok"},
		{"refusals", bucketAuditRefused, bucketAuditRefCounts, "permission_denied"},
	} {
		t.Run(w.name, func(t *testing.T) {
			patient := "pat-" + w.name
			event := func(i int) store.AuditEvent {
				return store.AuditEvent{ID: fmt.Sprintf("%016x", i), Time: base.Add(time.Duration(i)), PatientID: patient,
					ActorID: "acc-1", Procedure: "/mtm.v1.PatientService/GetMedicationList", Allowed: w.code == "ok", Code: w.code}
			}
			for i := range keep {
				if err := s.AppendAuditEvent(ctx, event(i), keep); err != nil {
					t.Fatal(err)
				}
			}
			// Put the window in the older form: the count in the counts
			// bucket, the sequence at zero.
			if err := s.db.Update(func(tx *bbolt.Tx) error {
				events := tx.Bucket(w.window).Bucket([]byte(patient))
				if got := events.Sequence(); got != keep {
					return fmt.Errorf("the window's sequence counts %d events, want %d", got, keep)
				}
				if err := events.SetSequence(0); err != nil {
					return err
				}
				return tx.Bucket(w.counts).Put([]byte(patient), binary.BigEndian.AppendUint64(nil, keep))
			}); err != nil {
				t.Fatal(err)
			}
			for i := keep; i < keep+3; i++ {
				if err := s.AppendAuditEvent(ctx, event(i), keep); err != nil {
					t.Fatal(err)
				}
			}
			evs, err := s.ListAuditEvents(ctx, patient, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != keep || evs[0].ID != event(keep+2).ID || evs[keep-1].ID != event(3).ID {
				ids := make([]string, len(evs))
				for i, ev := range evs {
					ids[i] = ev.ID
				}
				t.Fatalf("window holds %v, want the newest %d (%s down to %s)", ids, keep, event(keep+2).ID, event(3).ID)
			}
			if err := s.db.View(func(tx *bbolt.Tx) error {
				if v := tx.Bucket(w.counts).Get([]byte(patient)); v != nil {
					return fmt.Errorf("the older count entry is still there: %x", v)
				}
				if got := tx.Bucket(w.window).Bucket([]byte(patient)).Sequence(); got != keep {
					return fmt.Errorf("the window's sequence counts %d events, want %d", got, keep)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

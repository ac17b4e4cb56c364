package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

var _ store.AuditTrail = (*Store)(nil)

// AppendAuditEvent adds ev to its patient's window (a nested bucket keyed
// by event id, which sorts by time) and deletes the oldest events beyond
// keep, atomically. An event whose ID is already stored replaces it. The
// number of kept events is tracked in its own bucket: bbolt's Bucket.Stats
// does not see writes of the running transaction.
//
// It returns once the event is committed (and fsynced unless NoSync).
// Appends that arrive while another commit runs share the next
// transaction, so a burst of reads costs one fsync per group, not per
// event; the write below reads its counter inside the transaction and may
// run again if another append of its group fails, without counting twice.
func (s *Store) AppendAuditEvent(ctx context.Context, ev store.AuditEvent, keep int) error {
	if keep <= 0 {
		return fmt.Errorf("bolt.AppendAuditEvent: keep must be positive, got %d", keep)
	}
	if ev.ID == "" || ev.PatientID == "" {
		return errors.New("bolt.AppendAuditEvent: empty event or patient id")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt.AppendAuditEvent: %w", err)
	}
	// Encoded once, outside the shared transaction, which then holds the
	// single writer slot only for the bucket updates.
	val, err := encode(s.codec, ev)
	if err != nil {
		return fmt.Errorf("bolt.AppendAuditEvent: %w", err)
	}
	err = s.audits.update(func(tx *bbolt.Tx) error {
		events, err := tx.Bucket(bucketAudit).CreateBucketIfNotExists([]byte(ev.PatientID))
		if err != nil {
			return err
		}
		counts := tx.Bucket(bucketAuditCounts)
		var n uint64
		if v := counts.Get([]byte(ev.PatientID)); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		if events.Get([]byte(ev.ID)) == nil {
			n++
		}
		if err := events.Put([]byte(ev.ID), val); err != nil {
			return err
		}
		for ; n > uint64(keep); n-- {
			k, _ := events.Cursor().First()
			if k == nil {
				break
			}
			if err := events.Delete(slices.Clone(k)); err != nil {
				return err
			}
		}
		return counts.Put([]byte(ev.PatientID), binary.BigEndian.AppendUint64(nil, n))
	})
	if err != nil {
		return fmt.Errorf("bolt.AppendAuditEvent: %w", err)
	}
	return nil
}

// ListAuditEvents returns up to limit of the patient's kept events, newest
// first, with IDs strictly less than before ("" for the newest). An unknown
// patient or a limit ≤ 0 gives an empty list.
func (s *Store) ListAuditEvents(ctx context.Context, patientID, before string, limit int) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		events := tx.Bucket(bucketAudit).Bucket([]byte(patientID))
		if events == nil || limit <= 0 {
			return nil
		}
		c := events.Cursor()
		var k, v []byte
		switch {
		case before == "":
			k, v = c.Last()
		default:
			// Seek lands on the first id ≥ before (or past the end).
			if k, _ = c.Seek([]byte(before)); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			ev, err := decode[store.AuditEvent](s.codec, v)
			if err != nil {
				return fmt.Errorf("event %s: %w", k, err)
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListAuditEvents: %w", err)
	}
	return out, nil
}

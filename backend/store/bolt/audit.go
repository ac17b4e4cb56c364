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

// AppendAuditEvent adds ev to its patient's access or refusal window (a
// nested bucket keyed by event id, which sorts by time; refusals live in
// their own top-level bucket) and deletes that window's oldest events
// beyond keep, atomically. An event whose ID is already stored replaces it. The
// number of kept events is the window bucket's sequence (keptCount): bbolt's
// Bucket.Stats does not see writes of the running transaction.
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
	// single writer slot only for the bucket updates and the seal (the
	// patient's data key is read, or created, in the transaction).
	val, err := encode(s.codec, ev)
	if err != nil {
		return fmt.Errorf("bolt.AppendAuditEvent: %w", err)
	}
	sealed := func(tx *bbolt.Tx) ([]byte, error) {
		if s.noSeal {
			return val, nil
		}
		return s.sealBytes(tx, ev.PatientID, kindAudit, auditID(ev.PatientID, ev.ID), val[1:])
	}
	windowBucket, countsBucket := bucketAudit, bucketAuditCounts
	if ev.EffectiveOutcome().Refusal() {
		windowBucket, countsBucket = bucketAuditRefused, bucketAuditRefCounts
	}
	err = s.writes.update(func(tx *bbolt.Tx) error {
		events, err := tx.Bucket(windowBucket).CreateBucketIfNotExists([]byte(ev.PatientID))
		if err != nil {
			return err
		}
		n, err := keptCount(tx, events, countsBucket, ev.PatientID)
		if err != nil {
			return err
		}
		if events.Get([]byte(ev.ID)) == nil {
			n++
		}
		enc, err := sealed(tx)
		if err != nil {
			return err
		}
		if err := events.Put([]byte(ev.ID), enc); err != nil {
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
		return events.SetSequence(n)
	})
	if err != nil {
		return fmt.Errorf("bolt.AppendAuditEvent: %w", err)
	}
	return nil
}

// keptCount is how many events the patient's window holds: the window
// bucket's sequence, which costs no page of its own (the bucket's header
// sits in its parent's page, which every append rewrites anyway). A window
// written before the count moved there keeps it in countsBucket instead;
// that entry is read once and deleted, and the caller's SetSequence
// carries it on.
func keptCount(tx *bbolt.Tx, events *bbolt.Bucket, countsBucket []byte, patientID string) (uint64, error) {
	if n := events.Sequence(); n > 0 {
		return n, nil
	}
	counts := tx.Bucket(countsBucket)
	v := counts.Get([]byte(patientID))
	if len(v) != 8 {
		return 0, nil
	}
	n := binary.BigEndian.Uint64(v)
	return n, counts.Delete([]byte(patientID))
}

// ListAuditEvents returns up to limit of the patient's kept events from
// both windows, newest first, with IDs strictly less than before ("" for
// the newest). An unknown patient or a limit ≤ 0 gives an empty list.
func (s *Store) ListAuditEvents(ctx context.Context, patientID, before string, limit int) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if limit <= 0 {
			return nil
		}
		accesses, err := s.auditPage(tx.Bucket(bucketAudit).Bucket([]byte(patientID)), patientID, before, limit)
		if err != nil {
			return err
		}
		refusals, err := s.auditPage(tx.Bucket(bucketAuditRefused).Bucket([]byte(patientID)), patientID, before, limit)
		if err != nil {
			return err
		}
		out = mergeNewestFirst(accesses, refusals, limit)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListAuditEvents: %w", err)
	}
	return out, nil
}

// auditPage reads up to limit events of one window (nil: none), newest
// first, with IDs strictly less than before ("" for the newest).
func (s *Store) auditPage(events *bbolt.Bucket, patientID, before string, limit int) ([]store.AuditEvent, error) {
	if events == nil {
		return nil, nil
	}
	var out []store.AuditEvent
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
		ev, err := openValue[store.AuditEvent](s, events.Tx(), kindAudit, auditID(patientID, string(k)), v)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", k, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// mergeNewestFirst merges two lists sorted by descending ID into the first
// limit events of both.
func mergeNewestFirst(a, b []store.AuditEvent, limit int) []store.AuditEvent {
	out := make([]store.AuditEvent, 0, min(limit, len(a)+len(b)))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].ID > b[0].ID) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// auditID is the id an audit event's ciphertext is bound to.
func auditID(patientID, eventID string) string { return patientID + "/" + eventID }

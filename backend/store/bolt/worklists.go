package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// bucketWorklists: pharmacy id → {list \x00 YYYYMMDD \x00 patient id → ""}.
// The entries are written in the transaction that writes the record, so
// they never disagree with it.
var bucketWorklists = []byte("worklists")

// worklistKey is the index key of one patient on one list.
func worklistKey(l store.Worklist, due store.Date, patientID string) []byte {
	k := make([]byte, 0, len(l)+len(patientID)+10)
	k = append(k, l...)
	k = append(k, 0)
	k = append(k, dateKey(due)...)
	k = append(k, 0)
	return append(k, patientID...)
}

// dateKey is YYYYMMDD, sortable.
func dateKey(d store.Date) string {
	return fmt.Sprintf("%04d%02d%02d", d.Year, int(d.Month), d.Day)
}

// syncWorklist makes the index entries of patient p agree with its dates,
// given the dates it was indexed under before (old); with force it writes
// the entries even where the dates did not change.
func syncWorklist(tx *bbolt.Tx, p store.Patient, old store.WorklistDates, force bool) error {
	if p.Worklist == old && !force {
		return nil
	}
	b, err := tx.Bucket(bucketWorklists).CreateBucketIfNotExists([]byte(p.PharmacyID))
	if err != nil {
		return err
	}
	for _, l := range store.AllWorklists {
		was, is := old.Get(l), p.Worklist.Get(l)
		if was != is && !was.IsZero() {
			if err := b.Delete(worklistKey(l, was, p.ID)); err != nil {
				return err
			}
		}
		if !is.IsZero() && (was != is || force) {
			if err := b.Put(worklistKey(l, is, p.ID), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListWorklist implements store.Worklists.
func (s *Store) ListWorklist(ctx context.Context, pharmacyID string, l store.Worklist, through store.Date, after store.WorklistCursor, limit int) ([]store.WorklistEntry, error) {
	var out []store.WorklistEntry
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketWorklists).Bucket([]byte(pharmacyID))
		if b == nil || limit <= 0 || through.IsZero() {
			return nil
		}
		prefix := append([]byte(l), 0)
		end := append(append(bytes.Clone(prefix), dateKey(through)...), 1) // past every key of through
		start := prefix
		if !after.Due.IsZero() {
			start = worklistKey(l, after.Due, after.PatientID)
		}
		patients := tx.Bucket(bucketPatients)
		c := b.Cursor()
		k, _ := c.Seek(start)
		if k != nil && !after.Due.IsZero() && bytes.Equal(k, start) {
			k, _ = c.Next()
		}
		for ; k != nil && len(out) < limit && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			rest := k[len(prefix):]
			if len(rest) < 10 {
				continue
			}
			due, err := parseDateKey(string(rest[:8]))
			if err != nil {
				continue
			}
			p, err := s.sharedPatient(patients, string(rest[9:]))
			if err != nil || p.PharmacyID != pharmacyID || p.Worklist.Get(l) != due {
				continue // cannot happen with one transaction per write; checked all the same
			}
			out = append(out, store.WorklistEntry{Due: due, Patient: p})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListWorklist: %w", err)
	}
	return out, nil
}

// sharedPatient is getPatient for callers that only read the records
// (ListWorklist, PatientWithParts): the cached record itself, not a copy
// (see recordcache.Cache.Shared).
func (s *Store) sharedPatient(b *bbolt.Bucket, id string) (store.Patient, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return store.Patient{}, store.ErrNotFound
	}
	return s.patients.Shared(id, v, nil, func(v []byte) (store.Patient, error) { return s.decodePatient(b.Tx(), id, v) })
}

// parseDateKey reads a dateKey: eight digits of a valid date.
func parseDateKey(s string) (store.Date, error) {
	n := 0
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' || len(s) != 8 {
			return store.Date{}, fmt.Errorf("date key %q: not eight digits", s)
		}
		n = n*10 + int(s[i]-'0')
	}
	d := store.Date{Year: n / 10000, Month: time.Month(n / 100 % 100), Day: n % 100}
	if d.Month < 1 || d.Month > 12 || d.Day < 1 || store.DateOf(d.Time()) != d {
		return store.Date{}, fmt.Errorf("date key %q: no such date", s)
	}
	return d, nil
}

// SetWorklistDates implements store.Worklists.
func (s *Store) SetWorklistDates(ctx context.Context, patientID string, version int64, dates store.WorklistDates) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPatients)
		p, err := s.getPatient(b, patientID)
		if err != nil {
			return err
		}
		if p.Version != version {
			return store.ErrConflict
		}
		if p.Worklist == dates {
			return nil
		}
		old := p.Worklist
		p.Worklist = dates
		if err := s.putPatient(b, p); err != nil {
			return err
		}
		return syncWorklist(tx, p, old, false)
	})
	if err != nil {
		return fmt.Errorf("bolt.SetWorklistDates: %w", err)
	}
	return nil
}

// ReindexPatient implements store.Worklists. The index is written with the
// record, so this only repairs a file written before the index existed.
func (s *Store) ReindexPatient(ctx context.Context, patientID string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		p, err := s.getPatient(tx.Bucket(bucketPatients), patientID)
		if err != nil {
			return err
		}
		return syncWorklist(tx, p, p.Worklist, true)
	})
	if err != nil {
		return fmt.Errorf("bolt.ReindexPatient: %w", err)
	}
	return nil
}

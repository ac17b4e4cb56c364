package bolt

import (
	"context"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// Each patient's change log: bucketChanges holds, per patient, a bucket of
// entries keyed by their Seq (8 bytes, big-endian, so keys sort by Seq);
// bucketParts holds the log's head (store.PartVersions). Both are written
// in the transaction that changes the record or thread they describe.

var _ store.ChangeLog = (*Store)(nil)

// logChanges appends cs to the patient's change log inside tx, keeping the
// newest store.ChangeLogKeep entries, and advances the head.
func (s *Store) logChanges(tx *bbolt.Tx, patientID string, cs []store.Change) error {
	if len(cs) == 0 {
		return nil
	}
	parts, err := s.parts(tx, patientID)
	if err != nil {
		return err
	}
	log, err := tx.Bucket(bucketChanges).CreateBucketIfNotExists([]byte(patientID))
	if err != nil {
		return err
	}
	if parts.Kinds == nil {
		parts.Kinds = map[store.ChangeKind]int64{}
	}
	for _, c := range cs {
		parts.Head++
		c.Seq = parts.Head
		parts.Kinds[c.Kind] = c.Seq
		if err := putSealed(s, log, patientID, kindChange, string(seqKey(c.Seq)), changeID(patientID, c.Seq), c); err != nil {
			return err
		}
	}
	// Drop the oldest entries beyond the bound.
	cur := log.Cursor()
	for k, _ := cur.First(); k != nil; k, _ = cur.First() {
		if seq := int64(binary.BigEndian.Uint64(k)); seq > parts.Head-store.ChangeLogKeep {
			parts.Oldest = seq
			break
		}
		if err := cur.Delete(); err != nil {
			return err
		}
	}
	return put(tx.Bucket(bucketParts), s.codec, patientID, parts)
}

// parts reads the head of the patient's change log (the zero value before
// its first change).
func (s *Store) parts(tx *bbolt.Tx, patientID string) (store.PartVersions, error) {
	v := tx.Bucket(bucketParts).Get([]byte(patientID))
	if v == nil {
		return store.PartVersions{}, nil
	}
	return decode[store.PartVersions](s.codec, v)
}

// PatientParts returns the head of the patient's change log, reading
// neither the record nor the log; store.ErrNotFound if there is no such
// patient.
func (s *Store) PatientParts(ctx context.Context, patientID string) (store.PartVersions, error) {
	var out store.PartVersions
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		if tx.Bucket(bucketPatients).Get([]byte(patientID)) == nil {
			return store.ErrNotFound
		}
		out, err = s.parts(tx, patientID)
		return err
	})
	if err != nil {
		return store.PartVersions{}, fmt.Errorf("bolt.PatientParts: %w", err)
	}
	return out, nil
}

// PatientWithParts returns the record and the head of its change log from
// one read transaction.
func (s *Store) PatientWithParts(ctx context.Context, patientID string) (store.Patient, store.PartVersions, error) {
	var (
		p  store.Patient
		pv store.PartVersions
	)
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		if p, err = s.sharedPatient(tx.Bucket(bucketPatients), patientID); err != nil {
			return err
		}
		pv, err = s.parts(tx, patientID)
		return err
	})
	if err != nil {
		return store.Patient{}, store.PartVersions{}, fmt.Errorf("bolt.PatientWithParts: %w", err)
	}
	return p, pv, nil
}

// PatientChanges returns up to limit entries after the cursor `after`,
// oldest first, and the head; store.ErrChangesTrimmed when some of them
// were dropped or after is beyond the head.
func (s *Store) PatientChanges(ctx context.Context, patientID string, after int64, limit int) ([]store.Change, store.PartVersions, error) {
	var (
		out   []store.Change
		parts store.PartVersions
	)
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		if tx.Bucket(bucketPatients).Get([]byte(patientID)) == nil {
			return store.ErrNotFound
		}
		if parts, err = s.parts(tx, patientID); err != nil {
			return err
		}
		if after < 0 || after > parts.Head || (parts.Oldest > 0 && after < parts.Oldest-1) {
			return store.ErrChangesTrimmed
		}
		log := tx.Bucket(bucketChanges).Bucket([]byte(patientID))
		if log == nil || limit <= 0 {
			return nil
		}
		c := log.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			ch, err := openValue[store.Change](s, tx, kindChange, changeID(patientID, int64(binary.BigEndian.Uint64(k))), v)
			if err != nil {
				return err
			}
			out = append(out, ch)
		}
		return nil
	})
	if err != nil {
		return nil, store.PartVersions{}, fmt.Errorf("bolt.PatientChanges: %w", err)
	}
	return out, parts, nil
}

// changeID is the id a change-log entry's ciphertext is bound to.
func changeID(patientID string, seq int64) string { return fmt.Sprintf("%s/%d", patientID, seq) }

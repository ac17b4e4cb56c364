package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// errIdentityChanged is returned (wrapped) by UpdatePatient when fn changed
// the record's ID or PharmacyID. It is a programming error in the caller,
// not a conflict: retrying cannot succeed, so it does not wrap
// store.ErrConflict.
var errIdentityChanged = errors.New("fn changed the patient's ID or PharmacyID")

// CreatePatient stores a new patient with Version 1 and indexes it under
// its pharmacy; store.ErrAlreadyExists if the id is taken.
func (s *Store) CreatePatient(ctx context.Context, p store.Patient) error {
	p.Version, p.ProfileVersion = 1, 1
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if p.PharmacyID == "" {
			return errors.New("empty pharmacy id")
		}
		patients := tx.Bucket(bucketPatients)
		if p.ID == "" {
			return errors.New("empty id")
		}
		if patients.Get([]byte(p.ID)) != nil {
			return store.ErrAlreadyExists
		}
		if err := s.putPatient(patients, p); err != nil {
			return err
		}
		if err := s.syncNameIndex(tx, store.Patient{}, p, true); err != nil {
			return err
		}
		idx, err := tx.Bucket(bucketPharmacyIndex).CreateBucketIfNotExists([]byte(p.PharmacyID))
		if err != nil {
			return err
		}
		if err := idx.Put([]byte(p.ID), nil); err != nil {
			return err
		}
		return syncWorklist(tx, p, store.WorklistDates{}, false)
	})
	if err != nil {
		return fmt.Errorf("bolt.CreatePatient: %w", err)
	}
	return nil
}

// GetPatient returns the patient or store.ErrNotFound.
func (s *Store) GetPatient(ctx context.Context, id string) (store.Patient, error) {
	var p store.Patient
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		p, err = s.getPatient(tx.Bucket(bucketPatients), id)
		return err
	})
	if err != nil {
		return store.Patient{}, fmt.Errorf("bolt.GetPatient: %w", err)
	}
	return p, nil
}

// UpdatePatient runs fn on the current record inside one write transaction
// and stores its result with Version set to the current Version plus one
// and the part versions stamped (store.StampPartVersions).
// fn may run more than once (the transaction is shared with concurrent
// writes: see Store.update) and holds the store's single writer slot while
// it runs, so it must be quick. Errors: store.ErrNotFound; fn's error, wrapped
// (nothing written); a plain error, not store.ErrConflict, when fn changed
// ID or PharmacyID (nothing written).
func (s *Store) UpdatePatient(ctx context.Context, id string, fn func(store.Patient) (store.Patient, error)) (store.Patient, error) {
	var out store.Patient
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPatients)
		cur, err := s.getPatient(b, id)
		if err != nil {
			return err
		}
		// A record written before sealing gets its name index entry now.
		legacy := b.Get([]byte(id))[0] != formatSealedV1
		// fn may change cur's slices in place: the change log compares
		// next with a copy of its own.
		old, err := s.getPatient(b, id)
		if err != nil {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if next.ID != cur.ID || next.PharmacyID != cur.PharmacyID {
			return errIdentityChanged
		}
		next.Version = cur.Version + 1
		store.StampPartVersions(old, &next)
		if err := s.putPatient(b, next); err != nil {
			return err
		}
		if err := s.syncNameIndex(tx, old, next, legacy); err != nil {
			return err
		}
		if err := syncWorklist(tx, next, old.Worklist, false); err != nil {
			return err
		}
		if err := s.logChanges(tx, id, store.DiffPatient(old, next, time.Now().UTC())); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return store.Patient{}, fmt.Errorf("bolt.UpdatePatient: %w", err)
	}
	return out, nil
}

// ListPatients returns up to limit patients of the pharmacy in ID order,
// starting after the ID after ("" for the first page). An unknown pharmacy
// or a limit ≤ 0 gives an empty list.
func (s *Store) ListPatients(ctx context.Context, pharmacyID, after string, limit int) ([]store.Patient, error) {
	var out []store.Patient
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		idx := tx.Bucket(bucketPharmacyIndex).Bucket([]byte(pharmacyID))
		if idx == nil || limit <= 0 {
			return nil
		}
		patients := tx.Bucket(bucketPatients)
		c := idx.Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			p, err := s.getPatient(patients, string(k))
			if err != nil {
				return fmt.Errorf("patient %s indexed under its pharmacy: %w", k, err)
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListPatients: %w", err)
	}
	return out, nil
}

// getPatient is get for patient records, through the cache of decoded
// records (a record read again unchanged is copied, not decoded).
func (s *Store) getPatient(b *bbolt.Bucket, id string) (store.Patient, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return store.Patient{}, store.ErrNotFound
	}
	return s.patients.Patient(id, v, nil, func(v []byte) (store.Patient, error) { return s.decodePatient(b.Tx(), id, v) })
}

// decodePatient opens and decodes a stored patient record: sealed under
// the patient's data key or, written before sealing, clear.
func (s *Store) decodePatient(tx *bbolt.Tx, id string, v []byte) (store.Patient, error) {
	return openValue[store.Patient](s, tx, kindPatient, id, v)
}

// putPatient seals p under its patient's data key (created with their
// first record) and stores it.
func (s *Store) putPatient(b *bbolt.Bucket, p store.Patient) error {
	return putSealed(s, b, p.ID, kindPatient, p.ID, p.ID, p)
}

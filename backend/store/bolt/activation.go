package bolt

import (
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// PutActivationCode stores a one-time code under its hash and deletes any
// earlier code of the same patient. store.ErrAlreadyExists if the hash is
// taken (nothing written).
func (s *Store) PutActivationCode(ctx context.Context, c store.ActivationCode) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		codes := tx.Bucket(bucketCodes)
		if codes.Get([]byte(c.CodeHash)) != nil {
			return store.ErrAlreadyExists
		}
		byPatient := tx.Bucket(bucketCodesByPatient)
		if old := byPatient.Get([]byte(c.PatientID)); old != nil {
			if err := s.deleteCode(tx, string(old)); err != nil {
				return err
			}
		}
		if err := putNew(codes, s.codec, c.CodeHash, c); err != nil {
			return err
		}
		if err := byPatient.Put([]byte(c.PatientID), []byte(c.CodeHash)); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(expiryKey(c.ExpiresAt, expiryCode, c.CodeHash), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt.PutActivationCode: %w", err)
	}
	return nil
}

// GetActivationCode returns the code if it is live at now (now before
// ExpiresAt), else store.ErrNotFound.
func (s *Store) GetActivationCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, error) {
	var c store.ActivationCode
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		c, err = get[store.ActivationCode](tx.Bucket(bucketCodes), s.codec, codeHash)
		if err == nil && !now.Before(c.ExpiresAt) {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.ActivationCode{}, fmt.Errorf("bolt.GetActivationCode: %w", err)
	}
	return c, nil
}

// ConsumeActivationCode deletes the code and returns it if it is live at
// now; otherwise store.ErrNotFound. Of concurrent callers exactly one
// succeeds.
func (s *Store) ConsumeActivationCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, error) {
	var c store.ActivationCode
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		if err := s.pruneExpired(tx, now); err != nil {
			return err
		}
		c, err = get[store.ActivationCode](tx.Bucket(bucketCodes), s.codec, codeHash)
		if err != nil {
			return err
		}
		if !now.Before(c.ExpiresAt) {
			return store.ErrNotFound
		}
		return s.deleteCode(tx, codeHash)
	})
	if err != nil {
		return store.ActivationCode{}, fmt.Errorf("bolt.ConsumeActivationCode: %w", err)
	}
	return c, nil
}

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
		if c.CodeHash == "" {
			return fmt.Errorf("empty code hash")
		}
		if s.lookupKey(codes, blindCode, c.CodeHash) != "" {
			return store.ErrAlreadyExists
		}
		byPatient := tx.Bucket(bucketCodesByPatient)
		if old := byPatient.Get([]byte(c.PatientID)); old != nil {
			if err := s.deleteCode(tx, string(old)); err != nil {
				return err
			}
		}
		key := s.blind(blindCode, c.CodeHash)
		if err := putSealed(s, codes, c.PatientID, kindCode, key, key, c); err != nil {
			return err
		}
		if err := byPatient.Put([]byte(c.PatientID), []byte(key)); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(expiryKey(c.ExpiresAt, expiryCode, key), nil)
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
		c, _, err = s.findCode(tx, codeHash)
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
		var key string
		c, key, err = s.findCode(tx, codeHash)
		if err != nil {
			return err
		}
		if !now.Before(c.ExpiresAt) {
			return store.ErrNotFound
		}
		return s.deleteCode(tx, key)
	})
	if err != nil {
		return store.ActivationCode{}, fmt.Errorf("bolt.ConsumeActivationCode: %w", err)
	}
	return c, nil
}

// findCode returns the activation code of a code hash and the key it is
// stored under (its blind index, or the hash itself for a code written
// before blind indexes), or store.ErrNotFound.
func (s *Store) findCode(tx *bbolt.Tx, codeHash string) (store.ActivationCode, string, error) {
	codes := tx.Bucket(bucketCodes)
	key := s.lookupKey(codes, blindCode, codeHash)
	if key == "" {
		return store.ActivationCode{}, "", store.ErrNotFound
	}
	c, err := getSealed[store.ActivationCode](s, codes, kindCode, key, key)
	return c, key, err
}

package bolt

import (
	"context"
	"fmt"
	"sort"

	"go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// PutSigningKey stores a new signing key; store.ErrAlreadyExists if the kid
// is taken.
func (s *Store) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return putNew(tx.Bucket(bucketSigningKeys), s.codec, k.KID, k)
	})
	if err != nil {
		return fmt.Errorf("bolt.PutSigningKey: %w", err)
	}
	return nil
}

// ListSigningKeys returns every signing key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	var out []store.SigningKey
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSigningKeys).ForEach(func(_, v []byte) error {
			k, err := decode[store.SigningKey](s.codec, v)
			if err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListSigningKeys: %w", err)
	}
	sortSigningKeys(out)
	return out, nil
}

// DeleteSigningKey removes a signing key; store.ErrNotFound if there is none.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSigningKeys)
		if b.Get([]byte(kid)) == nil {
			return store.ErrNotFound
		}
		return b.Delete([]byte(kid))
	})
	if err != nil {
		return fmt.Errorf("bolt.DeleteSigningKey: %w", err)
	}
	return nil
}

// sortSigningKeys orders keys oldest first, ties by kid.
func sortSigningKeys(keys []store.SigningKey) {
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].Created.Equal(keys[j].Created) {
			return keys[i].Created.Before(keys[j].Created)
		}
		return keys[i].KID < keys[j].KID
	})
}

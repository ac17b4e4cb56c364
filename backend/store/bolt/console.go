package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// PutConsoleSession creates or replaces the session under its id hash and
// indexes its expiry, so that later write transactions prune it once dead.
func (s *Store) PutConsoleSession(ctx context.Context, cs store.ConsoleSession) error {
	if cs.IDHash == "" {
		return errors.New("bolt.PutConsoleSession: empty id hash")
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if err := put(tx.Bucket(bucketConsoleSessions), s.codec, cs.IDHash, cs); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(expiryKey(cs.ExpiresAt, expiryConsole, cs.IDHash), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt.PutConsoleSession: %w", err)
	}
	return nil
}

// GetConsoleSession returns the session if it is live at now, else
// store.ErrNotFound.
func (s *Store) GetConsoleSession(ctx context.Context, idHash string, now time.Time) (store.ConsoleSession, error) {
	var cs store.ConsoleSession
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		cs, err = get[store.ConsoleSession](tx.Bucket(bucketConsoleSessions), s.codec, idHash)
		if err == nil && !now.Before(cs.ExpiresAt) {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return store.ConsoleSession{}, fmt.Errorf("bolt.GetConsoleSession: %w", err)
	}
	return cs, nil
}

// DeleteConsoleSession removes the session (its expiry entries go when
// pruned); an unknown one is not an error.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketConsoleSessions).Delete([]byte(idHash))
	})
	if err != nil {
		return fmt.Errorf("bolt.DeleteConsoleSession: %w", err)
	}
	return nil
}

// deleteConsoleSessionIfDead deletes the session if it is dead at now (a
// replaced session leaves index entries of its earlier expiries behind).
func (s *Store) deleteConsoleSessionIfDead(tx *bbolt.Tx, idHash string, now time.Time) error {
	b := tx.Bucket(bucketConsoleSessions)
	cs, err := get[store.ConsoleSession](b, s.codec, idHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cs.ExpiresAt.After(now) {
		return nil
	}
	return b.Delete([]byte(idHash))
}

package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

var _ store.Caregivers = (*Store)(nil)

// errAccountIdentityChanged is returned (wrapped) by UpdateAccount when fn
// changed ID, Email or Role.
var errAccountIdentityChanged = errors.New("fn changed the account's ID, Email or Role")

// PutInvite stores a caregiver invite under its code hash;
// store.ErrAlreadyExists if the hash is taken.
func (s *Store) PutInvite(ctx context.Context, inv store.Invite) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		invites := tx.Bucket(bucketInvites)
		if inv.CodeHash == "" {
			return errors.New("empty code hash")
		}
		if s.lookupKey(invites, blindInvite, inv.CodeHash) != "" {
			return store.ErrAlreadyExists
		}
		key := s.blind(blindInvite, inv.CodeHash)
		if err := putSealed(s, invites, "", kindInvite, key, key, inv); err != nil {
			return err
		}
		return tx.Bucket(bucketExpiry).Put(expiryKey(inv.ExpiresAt, expiryInvite, key), nil)
	})
	if err != nil {
		return fmt.Errorf("bolt.PutInvite: %w", err)
	}
	return nil
}

// ConsumeInvite deletes and returns the invite if it is live at now;
// otherwise store.ErrNotFound. One transaction, so exactly one of
// concurrent callers succeeds.
func (s *Store) ConsumeInvite(ctx context.Context, codeHash string, now time.Time) (store.Invite, error) {
	var inv store.Invite
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		if err := s.pruneExpired(tx, now); err != nil {
			return err
		}
		key := s.lookupKey(tx.Bucket(bucketInvites), blindInvite, codeHash)
		if key == "" {
			return store.ErrNotFound
		}
		inv, err = getSealed[store.Invite](s, tx.Bucket(bucketInvites), kindInvite, key, key)
		if err != nil {
			return err
		}
		if !now.Before(inv.ExpiresAt) {
			return store.ErrNotFound
		}
		return s.deleteInvite(tx, key)
	})
	if err != nil {
		return store.Invite{}, fmt.Errorf("bolt.ConsumeInvite: %w", err)
	}
	return inv, nil
}

// deleteInvite removes the invite stored under key (the blind index of
// its code hash, or the hash itself for one written before) and its
// expiry entry; a missing invite is not an error.
func (s *Store) deleteInvite(tx *bbolt.Tx, hash string) error {
	invites := tx.Bucket(bucketInvites)
	inv, err := getSealed[store.Invite](s, invites, kindInvite, hash, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(inv.ExpiresAt, expiryInvite, hash)); err != nil {
		return err
	}
	return invites.Delete([]byte(hash))
}

// UpdateAccount runs fn on the current account inside one write
// transaction (fn runs exactly once) and stores its result with Version set
// to the current Version plus one. Errors: store.ErrNotFound; fn's error,
// wrapped (nothing written); a plain error, not store.ErrConflict, when fn
// changed ID, Email or Role (nothing written): that is a bug in the caller
// that a retry cannot fix, as with UpdatePatient.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(store.Account) (store.Account, error)) (store.Account, error) {
	var out store.Account
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAccounts)
		old, err := s.getAccount(b, id)
		if err != nil {
			return err
		}
		next, err := fn(old)
		if err != nil {
			return err
		}
		if next.ID != old.ID || next.Email != old.Email || next.Role != old.Role {
			return errAccountIdentityChanged
		}
		next.Version = old.Version + 1
		out = next
		return s.putAccount(b, next)
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("bolt.UpdateAccount: %w", err)
	}
	return out, nil
}

package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// CreatePharmacy stores a new pharmacy; store.ErrAlreadyExists if the id
// is taken.
func (s *Store) CreatePharmacy(ctx context.Context, p store.Pharmacy) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		return putNew(tx.Bucket(bucketPharmacies), s.codec, p.ID, p)
	})
	if err != nil {
		return fmt.Errorf("bolt.CreatePharmacy: %w", err)
	}
	return nil
}

// GetPharmacy returns the pharmacy or store.ErrNotFound.
func (s *Store) GetPharmacy(ctx context.Context, id string) (store.Pharmacy, error) {
	var p store.Pharmacy
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		p, err = get[store.Pharmacy](tx.Bucket(bucketPharmacies), s.codec, id)
		return err
	})
	if err != nil {
		return store.Pharmacy{}, fmt.Errorf("bolt.GetPharmacy: %w", err)
	}
	return p, nil
}

// UpdatePharmacy applies fn to the stored pharmacy in one transaction;
// store.ErrNotFound if there is none.
func (s *Store) UpdatePharmacy(ctx context.Context, id string, fn func(*store.Pharmacy) error) (store.Pharmacy, error) {
	var p store.Pharmacy
	err := s.update(ctx, func(tx *bbolt.Tx) (err error) {
		b := tx.Bucket(bucketPharmacies)
		if p, err = get[store.Pharmacy](b, s.codec, id); err != nil {
			return err
		}
		if err := fn(&p); err != nil {
			return err
		}
		p.ID = id
		return put(b, s.codec, id, p)
	})
	if err != nil {
		return store.Pharmacy{}, fmt.Errorf("bolt.UpdatePharmacy: %w", err)
	}
	return p, nil
}

// CreateAccount stores a new account with Version 1 and its e-mail
// normalized; store.ErrAlreadyExists if the id or the e-mail is taken.
func (s *Store) CreateAccount(ctx context.Context, a store.Account) error {
	a.Email = store.NormalizeEmail(a.Email)
	a.Version = 1
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		emails := tx.Bucket(bucketAccountEmails)
		if s.lookupKey(emails, blindEmail, a.Email) != "" {
			return fmt.Errorf("e-mail: %w", store.ErrAlreadyExists)
		}
		accounts := tx.Bucket(bucketAccounts)
		if a.ID == "" {
			return fmt.Errorf("empty id")
		}
		if accounts.Get([]byte(a.ID)) != nil {
			return store.ErrAlreadyExists
		}
		if err := s.putAccount(accounts, a); err != nil {
			return err
		}
		return emails.Put([]byte(s.blind(blindEmail, a.Email)), []byte(a.ID))
	})
	if err != nil {
		return fmt.Errorf("bolt.CreateAccount: %w", err)
	}
	return nil
}

// GetAccount returns the account or store.ErrNotFound.
func (s *Store) GetAccount(ctx context.Context, id string) (store.Account, error) {
	var a store.Account
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		a, err = s.getAccount(tx.Bucket(bucketAccounts), id)
		return err
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("bolt.GetAccount: %w", err)
	}
	return a, nil
}

// GetAccountByEmail returns the account whose e-mail equals email after
// store.NormalizeEmail, or store.ErrNotFound.
func (s *Store) GetAccountByEmail(ctx context.Context, email string) (store.Account, error) {
	var a store.Account
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		email := store.NormalizeEmail(email)
		emails := tx.Bucket(bucketAccountEmails)
		k := s.lookupKey(emails, blindEmail, email)
		if k == "" {
			return store.ErrNotFound
		}
		a, err = s.getAccount(tx.Bucket(bucketAccounts), string(emails.Get([]byte(k))))
		if err == nil && a.Email != email {
			return fmt.Errorf("e-mail index names account %s of another e-mail: %w", a.ID, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return store.Account{}, fmt.Errorf("bolt.GetAccountByEmail: %w", err)
	}
	return a, nil
}

// getAccount reads and opens an account, or store.ErrNotFound.
func (s *Store) getAccount(accounts *bbolt.Bucket, id string) (store.Account, error) {
	return getSealed[store.Account](s, accounts, kindAccount, id, id)
}

// putAccount seals a under the directory key and stores it.
func (s *Store) putAccount(accounts *bbolt.Bucket, a store.Account) error {
	return putSealed(s, accounts, "", kindAccount, a.ID, a.ID, a)
}

// get reads and decodes the record under key, or store.ErrNotFound.
func get[T any](b *bbolt.Bucket, c codec, key string) (T, error) {
	v := b.Get([]byte(key))
	if v == nil {
		var zero T
		return zero, store.ErrNotFound
	}
	return decode[T](c, v)
}

// put encodes v and stores it under key, replacing what was there.
func put[T any](b *bbolt.Bucket, c codec, key string, v T) error {
	enc, err := encode(c, v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), enc)
}

// putNew stores v under key unless the key exists (store.ErrAlreadyExists).
func putNew[T any](b *bbolt.Bucket, c codec, key string, v T) error {
	if key == "" {
		return fmt.Errorf("empty id")
	}
	if b.Get([]byte(key)) != nil {
		return store.ErrAlreadyExists
	}
	return put(b, c, key, v)
}

package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// refreshRecord is a stored refresh token. A spent token stays until it
// expires so that presenting it again is recognized as reuse.
type refreshRecord struct {
	Token store.RefreshToken
	Spent bool
}

// CreateRefreshToken stores the first token of a new family.
// store.ErrAlreadyExists if the hash or the family id is taken.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if t.FamilyID == "" {
			return errors.New("empty family id")
		}
		if tx.Bucket(bucketFamilies).Bucket([]byte(t.FamilyID)) != nil {
			return fmt.Errorf("family: %w", store.ErrAlreadyExists)
		}
		return s.addToken(tx, t)
	})
	if err != nil {
		return fmt.Errorf("bolt.CreateRefreshToken: %w", err)
	}
	return nil
}

// RotateRefreshToken spends the live token oldHash and stores next in its
// family, all in one transaction, and returns the spent token. next takes
// FamilyID, Subject and Role from the spent token; its own values of those
// fields are ignored. Errors: store.ErrNotFound when oldHash is unknown,
// expired at now or its family was revoked; store.ErrTokenReused when
// oldHash was already spent, after the whole family has been deleted;
// store.ErrAlreadyExists when next.Hash is taken (nothing written).
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, now time.Time) (store.RefreshToken, error) {
	var (
		spent  store.RefreshToken
		reused bool
	)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if err := s.pruneExpired(tx, now); err != nil {
			return err
		}
		tokens := tx.Bucket(bucketTokens)
		rec, err := get[refreshRecord](tokens, s.codec, oldHash)
		if err != nil {
			return err
		}
		if rec.Spent {
			// Commit the revocation; the error is returned after commit.
			reused = true
			return s.revokeFamily(tx, rec.Token.FamilyID)
		}
		if !now.Before(rec.Token.ExpiresAt) {
			return store.ErrNotFound
		}
		rec.Spent = true
		if err := put(tokens, s.codec, oldHash, rec); err != nil {
			return err
		}
		next.FamilyID, next.Subject, next.Role = rec.Token.FamilyID, rec.Token.Subject, rec.Token.Role
		spent = rec.Token
		return s.addToken(tx, next)
	})
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("bolt.RotateRefreshToken: %w", err)
	}
	if reused {
		s.log.Warn("refresh token reused; family revoked")
		return store.RefreshToken{}, fmt.Errorf("bolt.RotateRefreshToken: %w", store.ErrTokenReused)
	}
	return spent, nil
}

// RevokeRefreshFamily deletes every token of the family holding tokenHash;
// store.ErrNotFound if the hash is unknown (or its family already revoked).
func (s *Store) RevokeRefreshFamily(ctx context.Context, tokenHash string) error {
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		rec, err := get[refreshRecord](tx.Bucket(bucketTokens), s.codec, tokenHash)
		if err != nil {
			return err
		}
		return s.revokeFamily(tx, rec.Token.FamilyID)
	})
	if err != nil {
		return fmt.Errorf("bolt.RevokeRefreshFamily: %w", err)
	}
	return nil
}

// addToken stores a live token and adds it to its family, creating the
// family's bucket when needed.
func (s *Store) addToken(tx *bbolt.Tx, t store.RefreshToken) error {
	if err := putNew(tx.Bucket(bucketTokens), s.codec, t.Hash, refreshRecord{Token: t}); err != nil {
		return err
	}
	fam, err := tx.Bucket(bucketFamilies).CreateBucketIfNotExists([]byte(t.FamilyID))
	if err != nil {
		return err
	}
	if err := fam.Put([]byte(t.Hash), nil); err != nil {
		return err
	}
	return tx.Bucket(bucketExpiry).Put(expiryKey(t.ExpiresAt, expiryToken, t.Hash), nil)
}

// revokeFamily deletes every token of the family and the family itself. A
// revoked family is simply gone: its tokens are unknown from then on.
func (s *Store) revokeFamily(tx *bbolt.Tx, familyID string) error {
	fams := tx.Bucket(bucketFamilies)
	fam := fams.Bucket([]byte(familyID))
	if fam == nil {
		return nil
	}
	var members []string
	if err := fam.ForEach(func(k, _ []byte) error {
		members = append(members, string(k))
		return nil
	}); err != nil {
		return err
	}
	for _, h := range members {
		if err := s.deleteTokenRecord(tx, h); err != nil {
			return err
		}
	}
	return fams.DeleteBucket([]byte(familyID))
}

// deleteToken removes one token (expired) from its family, and the family
// once it has no tokens left. A missing token is not an error.
func (s *Store) deleteToken(tx *bbolt.Tx, hash string) error {
	rec, err := get[refreshRecord](tx.Bucket(bucketTokens), s.codec, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.deleteTokenRecord(tx, hash); err != nil {
		return err
	}
	fams := tx.Bucket(bucketFamilies)
	fam := fams.Bucket([]byte(rec.Token.FamilyID))
	if fam == nil {
		return nil
	}
	if err := fam.Delete([]byte(hash)); err != nil {
		return err
	}
	if k, _ := fam.Cursor().First(); k == nil {
		return fams.DeleteBucket([]byte(rec.Token.FamilyID))
	}
	return nil
}

// deleteTokenRecord removes a token and its expiry entry, leaving its
// family's member list to the caller.
func (s *Store) deleteTokenRecord(tx *bbolt.Tx, hash string) error {
	tokens := tx.Bucket(bucketTokens)
	rec, err := get[refreshRecord](tokens, s.codec, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(rec.Token.ExpiresAt, expiryToken, hash)); err != nil {
		return err
	}
	return tokens.Delete([]byte(hash))
}

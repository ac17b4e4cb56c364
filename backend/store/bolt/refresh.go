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
// expires so that presenting it again is recognized as a repeat or a reuse;
// a revoked one stays so that it is told apart from an unknown token.
type refreshRecord struct {
	Token   store.RefreshToken
	Spent   bool
	Revoked bool
	// Set when spent: the successor's hash and sealed clear value, and
	// until when a repeat gets them.
	Successor  string
	Sealed     []byte
	GraceUntil time.Time
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

// RotateRefreshToken spends the live token oldHash and stores r.Next in
// its family, all in one transaction, as store.Sessions documents: a
// repeat within the grace returns the stored successor; any other
// presentation of a spent token revokes the family (store.ErrTokenReused);
// a token of a revoked family gets store.ErrSessionRevoked; an unknown or
// expired one store.ErrNotFound; store.ErrAlreadyExists when r.Next.Hash
// is taken (nothing written).
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, r store.Rotation, now time.Time) (store.Rotated, error) {
	var (
		out    store.Rotated
		reused bool
	)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		out, reused = store.Rotated{}, false
		if err := s.pruneExpired(tx, now); err != nil {
			return err
		}
		tokens := tx.Bucket(bucketTokens)
		rec, err := get[refreshRecord](tokens, s.codec, oldHash)
		if err != nil {
			return err
		}
		if rec.Revoked {
			return store.ErrSessionRevoked
		}
		if rec.Spent {
			if now.Before(rec.GraceUntil) {
				succ, err := get[refreshRecord](tokens, s.codec, rec.Successor)
				if err == nil && !succ.Spent && !succ.Revoked && now.Before(succ.Token.ExpiresAt) {
					out = store.Rotated{Spent: rec.Token, Next: succ.Token, Sealed: rec.Sealed, Repeat: true}
					return nil
				}
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			// Commit the revocation; the error is returned after commit.
			reused = true
			return s.revokeFamily(tx, rec.Token.FamilyID)
		}
		if !now.Before(rec.Token.ExpiresAt) {
			return store.ErrNotFound
		}
		next := r.Next
		next.FamilyID, next.Subject, next.Role = rec.Token.FamilyID, rec.Token.Subject, rec.Token.Role
		rec.Spent = true
		rec.Successor, rec.Sealed, rec.GraceUntil = next.Hash, r.Sealed, now.Add(r.Grace)
		if err := put(tokens, s.codec, oldHash, rec); err != nil {
			return err
		}
		out = store.Rotated{Spent: rec.Token, Next: next, Sealed: r.Sealed}
		return s.addToken(tx, next)
	})
	if err != nil {
		return store.Rotated{}, fmt.Errorf("bolt.RotateRefreshToken: %w", err)
	}
	if reused {
		s.log.Warn("refresh token reused; family revoked")
		return store.Rotated{}, fmt.Errorf("bolt.RotateRefreshToken: %w", store.ErrTokenReused)
	}
	return out, nil
}

// RevokeRefreshFamily revokes every token of the family holding tokenHash;
// store.ErrNotFound if the hash is unknown.
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

// revokeFamily marks every token of the family revoked. The records stay
// until they expire, so that a revoked token is told apart from an unknown
// one.
func (s *Store) revokeFamily(tx *bbolt.Tx, familyID string) error {
	fam := tx.Bucket(bucketFamilies).Bucket([]byte(familyID))
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
	tokens := tx.Bucket(bucketTokens)
	for _, h := range members {
		rec, err := get[refreshRecord](tokens, s.codec, h)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		rec.Revoked, rec.Sealed = true, nil
		if err := put(tokens, s.codec, h, rec); err != nil {
			return err
		}
	}
	return nil
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

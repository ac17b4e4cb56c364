package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// PutActivationCode stores a one-time code keyed by its hash and makes it
// the patient's only live code; store.ErrAlreadyExists if the hash is
// taken. The hash index is written first, then the patient's current code
// (see the package comment).
func (s *Store) PutActivationCode(ctx context.Context, c store.ActivationCode) error {
	const opName = "redisstore.PutActivationCode"
	rec, err := s.encode(codeWire{CodeHash: c.CodeHash, PatientID: c.PatientID, ExpiresAt: tEnc(c.ExpiresAt), CreatedAt: tEnc(c.CreatedAt)})
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	ttl := s.gcTTL(c.ExpiresAt).Milliseconds()
	if err := s.createRecord(ctx, opName, s.k.code(c.CodeHash), []byte(c.PatientID), ttl); err != nil {
		return err
	}
	status, old, err := s.run(ctx, s.scripts.replace, s.k.patientCode(c.PatientID), rec, ttl)
	if err != nil {
		return s.fail(opName, err)
	}
	if status != stOK {
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	if old != "" {
		var w codeWire
		if s.decode([]byte(old), &w) == nil && w.CodeHash != c.CodeHash {
			// Best effort: the replaced code is dead either way.
			_, _, _ = s.run(ctx, s.scripts.delIfEqual, s.k.code(w.CodeHash), c.PatientID)
		}
	}
	return nil
}

// GetActivationCode returns the live code with this hash, or
// store.ErrNotFound (unknown, replaced, consumed or expired at now).
func (s *Store) GetActivationCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, error) {
	const opName = "redisstore.GetActivationCode"
	c, _, err := s.liveCode(ctx, codeHash, now)
	if err != nil {
		return store.ActivationCode{}, s.fail(opName, err)
	}
	return c, nil
}

// ConsumeActivationCode deletes the live code with this hash and returns
// it. Of concurrent callers exactly one succeeds; the others, and callers
// after expiry, get store.ErrNotFound.
func (s *Store) ConsumeActivationCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, error) {
	const opName = "redisstore.ConsumeActivationCode"
	c, raw, err := s.liveCode(ctx, codeHash, now)
	if err != nil {
		return store.ActivationCode{}, s.fail(opName, err)
	}
	status, _, err := s.run(ctx, s.scripts.delIfEqual, s.k.patientCode(c.PatientID), raw)
	if err != nil {
		return store.ActivationCode{}, s.fail(opName, err)
	}
	if status != stOK {
		return store.ActivationCode{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	}
	// Best effort: without its patient's code the index entry is dead.
	_, _, _ = s.run(ctx, s.scripts.delIfEqual, s.k.code(codeHash), c.PatientID)
	return c, nil
}

// liveCode returns the code with this hash and its stored bytes if it is
// its patient's current code and not expired at now; otherwise an error
// wrapping store.ErrNotFound (or the read's failure).
func (s *Store) liveCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, string, error) {
	patientID, err := s.get(ctx, s.k.code(codeHash))
	if err != nil {
		return store.ActivationCode{}, "", err
	}
	raw, err := s.get(ctx, s.k.patientCode(string(patientID)))
	if err != nil {
		return store.ActivationCode{}, "", err
	}
	var w codeWire
	if err := s.decode(raw, &w); err != nil {
		return store.ActivationCode{}, "", err
	}
	c := store.ActivationCode{CodeHash: w.CodeHash, PatientID: w.PatientID, ExpiresAt: tDec(w.ExpiresAt), CreatedAt: tDec(w.CreatedAt)}
	if c.CodeHash != codeHash || !now.Before(c.ExpiresAt) {
		return store.ActivationCode{}, "", store.ErrNotFound
	}
	return c, string(raw), nil
}

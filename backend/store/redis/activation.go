package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
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
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	dk, wrapped, err := s.writeKeyWrapped(ctx, c.PatientID)
	if err != nil {
		return s.fail(opName, err)
	}
	clear := rec
	if rec, err = sealRecord(dk, kindCode, c.PatientID, rec); err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	ttl := s.gcTTL(c.ExpiresAt).Milliseconds()
	if err := s.createRecord(ctx, opName, s.codeKey(c.CodeHash), []byte(c.PatientID), ttl); err != nil {
		return err
	}
	s.sealedHook(c.PatientID)
	status, old, err := s.run(ctx, s.scripts.replace, s.k.patientCode(c.PatientID), rec, ttl)
	if err != nil {
		return s.fail(opName, err)
	}
	if status != stOK {
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	if err := s.resealCodeIfKeyMoved(ctx, c.PatientID, wrapped, clear, rec); err != nil {
		return s.fail(opName, err)
	}
	if old != "" {
		var w codeWire
		if s.decodeCode(dk, c.PatientID, []byte(old), &w) == nil && w.CodeHash != c.CodeHash {
			// Best effort: the replaced code is dead either way.
			_, _, _ = s.run(ctx, s.scripts.delIfEqual, s.codeKey(w.CodeHash), c.PatientID)
			s.dropLegacy(ctx, s.k.legacyCode(w.CodeHash), c.PatientID)
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
	_, _, _ = s.run(ctx, s.scripts.delIfEqual, s.codeKey(codeHash), c.PatientID)
	s.dropLegacy(ctx, s.k.legacyCode(codeHash), c.PatientID)
	return c, nil
}

// liveCode returns the code with this hash and its stored bytes if it is
// its patient's current code and not expired at now; otherwise an error
// wrapping store.ErrNotFound (or the read's failure).
func (s *Store) liveCode(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, string, error) {
	var (
		out0 store.ActivationCode
		out1 string
	)
	err := retrySealed(func() error {
		var err error
		out0, out1, err = s.liveCodeOnce(ctx, codeHash, now)
		return err
	})
	return out0, out1, err
}

// liveCodeOnce is one attempt of liveCode.
func (s *Store) liveCodeOnce(ctx context.Context, codeHash string, now time.Time) (store.ActivationCode, string, error) {
	patientID, err := s.get(ctx, s.codeKey(codeHash))
	if errors.Is(err, redis.Nil) { // a code from before blind indexes
		patientID, err = s.get(ctx, s.k.legacyCode(codeHash))
	}
	if err != nil {
		return store.ActivationCode{}, "", err
	}
	pid := string(patientID)
	cctx, cancel := s.call(ctx)
	pipe := s.rdb.Pipeline()
	rawCmd := pipe.Get(cctx, s.k.patientCode(pid))
	keyCmd := pipe.Get(cctx, s.k.patientKey(pid))
	_, _ = pipe.Exec(cctx)
	cancel()
	raw, err := rawCmd.Bytes()
	if err != nil {
		return store.ActivationCode{}, "", err
	}
	dk, err := s.pipedKey(pid, keyCmd)
	if err != nil {
		return store.ActivationCode{}, "", err
	}
	var w codeWire
	if err := s.decodeCode(dk, pid, raw, &w); err != nil {
		return store.ActivationCode{}, "", err
	}
	c := store.ActivationCode{CodeHash: w.CodeHash, PatientID: w.PatientID, ExpiresAt: tDec(w.ExpiresAt), CreatedAt: tDec(w.CreatedAt)}
	if c.CodeHash != codeHash || !now.Before(c.ExpiresAt) {
		return store.ActivationCode{}, "", store.ErrNotFound
	}
	return c, string(raw), nil
}

// codeKey is the index key of an activation code hash: a blind index.
func (s *Store) codeKey(codeHash string) string { return s.k.code(s.blind(blindCode, codeHash)) }

// decodeCode reads a patient's current code, sealed or not.
func (s *Store) decodeCode(dk *seal.DataKey, patientID string, b []byte, w *codeWire) error {
	rec, err := openRecord(dk, kindCode, patientID, b)
	if err != nil {
		return err
	}
	return s.decode(rec, w)
}

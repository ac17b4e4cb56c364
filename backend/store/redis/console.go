package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// consoleSessionWire is a console session as stored.
type consoleSessionWire struct {
	AccountID string `cbor:"1,keyasint"`
	Sealed    []byte `cbor:"2,keyasint"`
	ExpiresAt int64  `cbor:"3,keyasint"`
}

// PutConsoleSession creates or replaces the session; Redis drops it a
// grace period after it expires.
func (s *Store) PutConsoleSession(ctx context.Context, cs store.ConsoleSession) error {
	const opName = "redisstore.PutConsoleSession"
	if cs.IDHash == "" {
		return errors.New(opName + ": empty id hash")
	}
	b, err := s.encode(consoleSessionWire{AccountID: cs.AccountID, Sealed: cs.Sealed, ExpiresAt: tEnc(cs.ExpiresAt)})
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.rdb.Set(cctx, s.k.consoleSession(cs.IDHash), b, s.gcTTL(cs.ExpiresAt)).Err(); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

// GetConsoleSession returns the session if it is live at now, else
// store.ErrNotFound.
func (s *Store) GetConsoleSession(ctx context.Context, idHash string, now time.Time) (store.ConsoleSession, error) {
	const opName = "redisstore.GetConsoleSession"
	var w consoleSessionWire
	if err := s.getRecord(ctx, opName, s.k.consoleSession(idHash), &w); err != nil {
		return store.ConsoleSession{}, err
	}
	cs := store.ConsoleSession{IDHash: idHash, AccountID: w.AccountID, Sealed: w.Sealed, ExpiresAt: tDec(w.ExpiresAt)}
	if !now.Before(cs.ExpiresAt) {
		return store.ConsoleSession{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	}
	return cs, nil
}

// DeleteConsoleSession removes the session; an unknown one is not an error.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash string) error {
	const opName = "redisstore.DeleteConsoleSession"
	cctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.rdb.Del(cctx, s.k.consoleSession(idHash)).Err(); err != nil {
		return s.fail(opName, err)
	}
	return nil
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

var _ store.Caregivers = (*Store)(nil)

// PutInvite stores a caregiver invite under its code hash;
// store.ErrAlreadyExists if the hash is taken.
func (s *Store) PutInvite(ctx context.Context, inv store.Invite) error {
	const opName = "redisstore.PutInvite"
	rec, err := s.encode(inviteWire{CodeHash: inv.CodeHash, PatientID: inv.PatientID, Scopes: scopesToWire(inv.Scopes),
		EndsOn: dEnc(inv.EndsOn), ExpiresAt: tEnc(inv.ExpiresAt), CreatedAt: tEnc(inv.CreatedAt)})
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	blind := s.blind(blindInvite, inv.CodeHash)
	if s.sealing() {
		if rec, err = sealRecord(s.vault.Directory(), kindInvite, blind, rec); err != nil {
			return fmt.Errorf("%s: %w", opName, err)
		}
	}
	// The patient's list of invites first, so that DeletePatient finds
	// every invite naming them.
	if err := ctx.Err(); err != nil {
		return s.fail(opName, err)
	}
	list := s.k.patientInvites(inv.PatientID)
	cctx, cancel := s.call(ctx)
	err = s.apply(cctx, list, func(p redis.Pipeliner) redis.Cmder { return p.SAdd(cctx, list, blind) })
	cancel()
	if err != nil {
		return s.fail(opName, err)
	}
	return s.createRecord(ctx, opName, s.k.invite(blind), rec, s.gcTTL(inv.ExpiresAt).Milliseconds())
}

// ConsumeInvite deletes the invite and returns it; of concurrent callers
// exactly one succeeds. store.ErrNotFound for an unknown, spent or (at
// now) expired code.
func (s *Store) ConsumeInvite(ctx context.Context, codeHash string, now time.Time) (store.Invite, error) {
	const opName = "redisstore.ConsumeInvite"
	blind := s.blind(blindInvite, codeHash)
	key := s.k.invite(blind)
	raw, err := s.get(ctx, key)
	if errors.Is(err, redis.Nil) { // an invite from before blind indexes
		key = s.k.legacyInvite(codeHash)
		raw, err = s.get(ctx, key)
	}
	if err != nil {
		return store.Invite{}, s.fail(opName, err)
	}
	rec, err := openRecord(s.vault.Directory(), kindInvite, blind, raw)
	if err != nil {
		return store.Invite{}, fmt.Errorf("%s: %w", opName, err)
	}
	var w inviteWire
	if err := s.decode(rec, &w); err != nil {
		return store.Invite{}, fmt.Errorf("%s: %w", opName, err)
	}
	inv := store.Invite{CodeHash: w.CodeHash, PatientID: w.PatientID, Scopes: scopesFromWire(w.Scopes),
		EndsOn: dDec(w.EndsOn), ExpiresAt: tDec(w.ExpiresAt), CreatedAt: tDec(w.CreatedAt)}
	if !now.Before(inv.ExpiresAt) {
		return store.Invite{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	}
	var status string
	if key == s.k.legacyInvite(codeHash) {
		// No reply slot: its name would repeat the clear hash.
		cctx, cancel := s.call(ctx)
		n, derr := s.eval(cctx, s.scripts.dropIfEqual, []string{key}, raw).Int()
		cancel()
		status, err = map[bool]string{true: stOK, false: stNotFound}[n == 1], derr
	} else {
		status, _, err = s.run(ctx, s.scripts.delIfEqual, key, raw)
	}
	if err != nil {
		return store.Invite{}, s.fail(opName, err)
	}
	if status != stOK {
		return store.Invite{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	}
	return inv, nil
}

// UpdateAccount applies fn to the account and stores the result with
// Version incremented, by compare-and-set on the version (fn may run more
// than once; see UpdatePatient). A result that changes ID, Email or Role is
// refused. Returns the stored account, store.ErrNotFound, or fn's error
// with nothing written.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(store.Account) (store.Account, error)) (store.Account, error) {
	const opName = "redisstore.UpdateAccount"
	key := s.k.account(id)
	for attempt := range s.opts.MaxUpdateAttempts {
		if attempt > 0 {
			if err := s.jitter(ctx, attempt); err != nil {
				return store.Account{}, s.fail(opName, err)
			}
		}
		cur, header, err := s.readAccount(ctx, id)
		if err != nil {
			return store.Account{}, fmt.Errorf("%s: %w", opName, err)
		}
		next, err := fn(cur)
		if err != nil {
			return store.Account{}, err
		}
		if next.ID != cur.ID || next.Email != cur.Email || next.Role != cur.Role {
			return store.Account{}, fmt.Errorf("%s: the update changes the account's id, e-mail or role", opName)
		}
		next.Version = cur.Version + 1
		rec, err := s.sealAccount(next)
		if err != nil {
			return store.Account{}, fmt.Errorf("%s: %w", opName, err)
		}
		status, _, err := s.run(ctx, s.scripts.casVersioned, key, header, rec)
		if err != nil {
			return store.Account{}, s.fail(opName, err)
		}
		switch status {
		case stOK:
			return next, nil
		case stNotFound:
			return store.Account{}, fmt.Errorf("%s: %w", opName, store.ErrNotFound)
		case stConflict:
			continue
		default:
			return store.Account{}, fmt.Errorf("%s: unexpected script status %q", opName, status)
		}
	}
	return store.Account{}, fmt.Errorf("%s: gave up after %d attempts: %w", opName, s.opts.MaxUpdateAttempts, store.ErrConflict)
}

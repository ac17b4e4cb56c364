package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

// CreatePharmacy stores a new pharmacy; store.ErrAlreadyExists if the id
// is taken.
func (s *Store) CreatePharmacy(ctx context.Context, p store.Pharmacy) error {
	const opName = "redisstore.CreatePharmacy"
	b, err := s.encode(pharmacyToWire(p))
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	return s.createRecord(ctx, opName, s.k.pharmacy(p.ID), b, 0)
}

// GetPharmacy returns the pharmacy or store.ErrNotFound.
func (s *Store) GetPharmacy(ctx context.Context, id string) (store.Pharmacy, error) {
	const opName = "redisstore.GetPharmacy"
	var w pharmacyWire
	if err := s.getRecord(ctx, opName, s.k.pharmacy(id), &w); err != nil {
		return store.Pharmacy{}, err
	}
	return w.toStore(), nil
}

// UpdatePharmacy applies fn to the stored pharmacy; the write happens only
// if the record did not change since it was read (WATCH), retried a few
// times under contention. store.ErrNotFound if there is none.
func (s *Store) UpdatePharmacy(ctx context.Context, id string, fn func(*store.Pharmacy) error) (store.Pharmacy, error) {
	const opName = "redisstore.UpdatePharmacy"
	key := s.k.pharmacy(id)
	var out store.Pharmacy
	for attempt := 0; attempt < 8; attempt++ {
		cctx, cancel := s.call(ctx)
		err := s.rdb.Watch(cctx, func(tx *redis.Tx) error {
			b, err := tx.Get(cctx, key).Bytes()
			if err != nil {
				return err
			}
			var w pharmacyWire
			if err := s.decode(b, &w); err != nil {
				return err
			}
			p := w.toStore()
			if err := fn(&p); err != nil {
				return errUserFn{err}
			}
			p.ID = id
			nb, err := s.encode(pharmacyToWire(p))
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(cctx, func(pipe redis.Pipeliner) error {
				pipe.Set(cctx, key, nb, 0)
				return nil
			})
			out = p
			return err
		}, key)
		cancel()
		var ufe errUserFn
		switch {
		case err == nil:
			return out, nil
		case errors.As(err, &ufe):
			return store.Pharmacy{}, ufe.err
		case errors.Is(err, redis.TxFailedErr):
			continue // changed under us: read again
		}
		return store.Pharmacy{}, s.fail(opName, err)
	}
	return store.Pharmacy{}, fmt.Errorf("%s: %w", opName, store.ErrConflict)
}

// errUserFn carries the caller's closure error through a WATCH transaction.
type errUserFn struct{ err error }

func (e errUserFn) Error() string { return e.err.Error() }

func pharmacyToWire(p store.Pharmacy) pharmacyWire {
	return pharmacyWire{ID: p.ID, Name: p.Name, CreatedAt: tEnc(p.CreatedAt), Phone: p.Phone, TTY: p.TTY, Hours: p.Hours,
		Address: p.Address, NPI: p.NPI, PlanName: p.PlanName, RequireSecondFactor: p.RequireSecondFactor}
}

func (w pharmacyWire) toStore() store.Pharmacy {
	return store.Pharmacy{ID: w.ID, Name: w.Name, CreatedAt: tDec(w.CreatedAt), Phone: w.Phone, TTY: w.TTY, Hours: w.Hours,
		Address: w.Address, NPI: w.NPI, PlanName: w.PlanName, RequireSecondFactor: w.RequireSecondFactor}
}

// CreateAccount stores a new account with Version 1. The normalized e-mail
// is unique: store.ErrAlreadyExists when it or the id is taken. The e-mail
// claim and the record live in different slots; see the package comment
// for the order of the steps.
func (s *Store) CreateAccount(ctx context.Context, a store.Account) error {
	const opName = "redisstore.CreateAccount"
	a.Email = store.NormalizeEmail(a.Email)
	a.Version = 1
	rec, err := s.sealAccount(a)
	if err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	// An e-mail claimed before blind indexes (a clear key Reencrypt has not
	// moved yet) is still taken.
	if _, err := s.accountByClaim(ctx, s.k.legacyEmail(a.Email), a.Email); err == nil {
		return fmt.Errorf("%s: %w", opName, store.ErrAlreadyExists)
	} else if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, redis.Nil) {
		return s.fail(opName, err)
	}
	emailKey := s.emailKey(a.Email)
	claim := strconv.FormatInt(s.opts.Now().UnixMilli(), 10) + "\n" + a.ID

	// 1. Claim the e-mail.
	status, held, err := s.run(ctx, s.scripts.claimEmail, emailKey, a.ID, claim)
	if err != nil {
		return s.fail(opName, err)
	}
	if status == stTaken {
		if err := s.takeOverClaim(ctx, emailKey, a.Email, held, claim); err != nil {
			return s.fail(opName, err)
		}
	} else if status != stOK {
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	// The claim value now in Redis may be an earlier one of this same id.
	ownedB, err := s.get(ctx, emailKey)
	if err != nil {
		return s.fail(opName, err)
	}
	owned := string(ownedB)

	// 2. Create the record.
	status, _, err = s.run(ctx, s.scripts.create, s.k.account(a.ID), rec, 0)
	if err != nil {
		return s.fail(opName, err)
	}
	if status == stExists {
		// Release the claim unless the existing account is this e-mail's.
		existing, gerr := s.GetAccount(ctx, a.ID)
		if gerr != nil && !errors.Is(gerr, store.ErrNotFound) {
			return fmt.Errorf("%s: %w (and %w)", opName, store.ErrAlreadyExists, gerr)
		}
		if gerr != nil || existing.Email != a.Email {
			if _, _, err := s.run(ctx, s.scripts.delIfEqual, emailKey, owned); err != nil {
				return fmt.Errorf("%s: %w (releasing the e-mail: %w)", opName, store.ErrAlreadyExists, s.fail(opName, err))
			}
		}
		return fmt.Errorf("%s: %w", opName, store.ErrAlreadyExists)
	}
	if status != stOK {
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}

	// 3. Check that nobody took the claim over while this call stalled;
	// if someone did, the e-mail is theirs: withdraw the record.
	cur, err := s.get(ctx, emailKey)
	if err != nil && !errors.Is(err, redis.Nil) {
		return s.fail(opName, err)
	}
	if string(cur) != owned {
		if _, _, err := s.run(ctx, s.scripts.delIfEqual, s.k.account(a.ID), string(rec)); err != nil {
			return s.fail(opName, err)
		}
		return fmt.Errorf("%s: %w", opName, store.ErrAlreadyExists)
	}
	return nil
}

// takeOverClaim replaces the claim held on emailKey by claim when the
// holder's account does not exist and the claim is older than
// Options.ClaimGrace; otherwise it returns store.ErrAlreadyExists.
func (s *Store) takeOverClaim(ctx context.Context, emailKey, email, held, claim string) error {
	msText, holder, ok := strings.Cut(held, "\n")
	ms, perr := strconv.ParseInt(msText, 10, 64)
	if !ok || perr != nil {
		return fmt.Errorf("damaged e-mail claim: %w", errFormat)
	}
	acct, err := s.GetAccount(ctx, holder)
	switch {
	case err == nil && acct.Email == email:
		return store.ErrAlreadyExists
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	if s.opts.Now().UnixMilli()-ms < s.opts.ClaimGrace.Milliseconds() {
		return store.ErrAlreadyExists // its creator may still be on its way
	}
	status, _, err := s.run(ctx, s.scripts.swap, emailKey, held, claim)
	if err != nil {
		return err
	}
	if status != stOK {
		return store.ErrAlreadyExists
	}
	return nil
}

// GetAccount returns the account or store.ErrNotFound.
func (s *Store) GetAccount(ctx context.Context, id string) (store.Account, error) {
	a, _, err := s.readAccount(ctx, id)
	return a, err
}

// readAccount returns the account and its stored header (what the
// compare-and-set of the next version expects).
func (s *Store) readAccount(ctx context.Context, id string) (store.Account, []byte, error) {
	const opName = "redisstore.GetAccount"
	b, err := s.get(ctx, s.k.account(id))
	if err != nil {
		return store.Account{}, nil, s.fail(opName, err)
	}
	a, err := s.openAccount(id, b)
	if err != nil {
		return store.Account{}, nil, fmt.Errorf("%s: %w", opName, err)
	}
	return a, casHeader(b, versionedHeaderLen), nil
}

// sealAccount is encodeAccount sealed under the directory key (unsealed
// with NoSeal).
func (s *Store) sealAccount(a store.Account) ([]byte, error) {
	rec, err := s.encodeAccount(a)
	if err != nil {
		return nil, err
	}
	if !s.sealing() {
		return rec, nil
	}
	return sealVersioned(s.vault.Directory(), kindAccount, a.ID, rec, nil)
}

// openAccount decodes a stored account, sealed or not.
func (s *Store) openAccount(id string, b []byte) (store.Account, error) {
	raw, err := openVersioned(s.vault.Directory(), kindAccount, id, versionedHeaderLen, b)
	if err != nil {
		return store.Account{}, err
	}
	return s.decodeAccount(raw)
}

// emailKey is the claim key of a normalized e-mail: a blind index.
func (s *Store) emailKey(normalized string) string {
	return s.k.email(s.blind(blindEmail, normalized))
}

// accountByClaim returns the account the e-mail claim at key names, if it
// is that e-mail's; an error wrapping store.ErrNotFound (or redis.Nil)
// otherwise.
func (s *Store) accountByClaim(ctx context.Context, key, email string) (store.Account, error) {
	claim, err := s.get(ctx, key)
	if err != nil {
		return store.Account{}, err
	}
	_, id, _ := strings.Cut(string(claim), "\n")
	a, err := s.GetAccount(ctx, id)
	if err != nil {
		return store.Account{}, err
	}
	if a.Email != email {
		return store.Account{}, store.ErrNotFound
	}
	return a, nil
}

// GetAccountByEmail returns the account whose normalized e-mail matches,
// or store.ErrNotFound.
func (s *Store) GetAccountByEmail(ctx context.Context, email string) (store.Account, error) {
	const opName = "redisstore.GetAccountByEmail"
	email = store.NormalizeEmail(email)
	a, err := s.accountByClaim(ctx, s.emailKey(email), email)
	if errors.Is(err, redis.Nil) {
		// A claim from before blind indexes, until Reencrypt moves it.
		a, err = s.accountByClaim(ctx, s.k.legacyEmail(email), email)
	}
	if err != nil {
		return store.Account{}, s.fail(opName, err)
	}
	return a, nil
}

func accountToWire(a store.Account) accountWire {
	return accountWire{ID: a.ID, Email: a.Email, DisplayName: a.DisplayName, PasswordHash: a.PasswordHash,
		Role: string(a.Role), PharmacyID: a.PharmacyID, CreatedAt: tEnc(a.CreatedAt), NPI: a.NPI,
		Devices: mapSlice(a.Devices, deviceToWire), PatientIDs: a.PatientIDs, TOTPSecret: a.TOTPSecret, TOTPLastStep: a.TOTPLastStep}
}

func (w accountWire) toStore() store.Account {
	return store.Account{ID: w.ID, Email: w.Email, DisplayName: w.DisplayName, PasswordHash: w.PasswordHash,
		Role: store.Role(w.Role), PharmacyID: w.PharmacyID, CreatedAt: tDec(w.CreatedAt), NPI: w.NPI,
		Devices: mapSlice(w.Devices, deviceWire.toStore), PatientIDs: w.PatientIDs, TOTPSecret: w.TOTPSecret, TOTPLastStep: w.TOTPLastStep}
}

// createRecord stores value under key unless the key exists
// (store.ErrAlreadyExists). ttl 0 means the record does not expire.
func (s *Store) createRecord(ctx context.Context, opName, key string, value []byte, ttlMS int64) error {
	status, _, err := s.run(ctx, s.scripts.create, key, value, ttlMS)
	switch {
	case err != nil:
		return s.fail(opName, err)
	case status == stExists:
		return fmt.Errorf("%s: %w", opName, store.ErrAlreadyExists)
	case status != stOK:
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	return nil
}

// getRecord reads and decodes the record under key.
func (s *Store) getRecord(ctx context.Context, opName, key string, v any) error {
	b, err := s.get(ctx, key)
	if err != nil {
		return s.fail(opName, err)
	}
	if err := s.decode(b, v); err != nil {
		return fmt.Errorf("%s: %w", opName, err)
	}
	return nil
}

// get is one GET under Options.Timeout; redis.Nil when the key is missing.
func (s *Store) get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.rdb.Get(ctx, key).Bytes()
}

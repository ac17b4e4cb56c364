// Package store defines the storage contract of the MTM backend: the domain
// records it keeps and the one interface every backend implements.
//
// Records go in and come out as values. Every atomic change is either a single
// call (Create*, Consume*, Rotate*) or a read-modify-write closure
// (Update*) that the backend applies atomically: the closure may run more than
// once when a concurrent writer interferes, so it must not have side effects.
// A closure that returns an error aborts the update and nothing is written.
//
// Backends: store/bolt (embedded, the default) and store/redis. The
// conformance suite in store/storetest holds every backend to this contract.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	// ErrNotFound means the record does not exist (or has expired).
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists means a record with the same identity (id, e-mail,
	// code) already exists; nothing was written.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrConflict means the write was based on a stale version of the
	// record; nothing was written and the caller should re-read.
	ErrConflict = errors.New("store: conflict")
	// ErrTokenReused means a refresh token that was already spent was
	// presented again (outside the grace of a repeat); its whole family has
	// been revoked.
	ErrTokenReused = errors.New("store: refresh token reused")
	// ErrSessionRevoked means the refresh token belongs to a family that
	// was revoked earlier (by a reuse or a sign-out) and is still
	// remembered; nothing was written.
	ErrSessionRevoked = errors.New("store: session revoked")
	// ErrUnavailable means the backend could not be reached in time (a
	// timeout, an exhausted pool, a lost connection) or its disk refused
	// the write (full, read-only). The write may or may not have happened
	// only where the method's doc says so.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrNotReplicated means a write was applied by the primary but fewer
	// replicas than the deployment requires confirmed it in time, so a
	// failover may lose it; the call was not acknowledged. Backends wrap it
	// together with ErrUnavailable: callers retry it like any unavailable
	// store.
	ErrNotReplicated = errors.New("store: write not confirmed by replicas")
)

// Store is the storage contract. Every method takes a context whose deadline
// bounds the call; implementations must be safe for concurrent use by many
// goroutines and, for shared backends, by many processes. It is assembled
// from one interface per concern, each documented where it is declared.
type Store interface {
	Directory
	PatientRecords
	ChangeLog
	Sessions
	Throttle
	Caregivers
	AuditTrail
	Reminders
	Messages
	SigningKeys
	ConsoleSessions
	Worklists
	AtRest

	// Close releases the store's resources.
	Close() error
}

// Directory holds pharmacies and the accounts of staff and caregivers.
type Directory interface {
	// CreatePharmacy stores a new pharmacy. ErrAlreadyExists if the id is taken.
	CreatePharmacy(ctx context.Context, p Pharmacy) error
	// GetPharmacy returns the pharmacy or ErrNotFound.
	GetPharmacy(ctx context.Context, id string) (Pharmacy, error)
	// UpdatePharmacy applies fn to the stored pharmacy atomically and
	// returns the result; ErrNotFound if there is none, fn's error as it
	// is (nothing written). fn must not change ID.
	UpdatePharmacy(ctx context.Context, id string, fn func(*Pharmacy) error) (Pharmacy, error)

	// CreateAccount stores a new staff or caregiver account. The e-mail
	// (compared after NormalizeEmail) is unique: ErrAlreadyExists if taken.
	// The stored Version is 1.
	CreateAccount(ctx context.Context, a Account) error
	// GetAccount returns the account by id or ErrNotFound.
	GetAccount(ctx context.Context, id string) (Account, error)
	// GetAccountByEmail returns the account by e-mail (normalized) or ErrNotFound.
	GetAccountByEmail(ctx context.Context, email string) (Account, error)
}

// PatientRecords holds patient records (profile, PML, MAP and everything
// else kept per patient) and their one-time activation codes.
type PatientRecords interface {
	// CreatePatient stores a new patient record (Version and
	// ProfileVersion 1) and indexes it under its pharmacy.
	// ErrAlreadyExists if the id is taken.
	CreatePatient(ctx context.Context, p Patient) error
	// GetPatient returns the patient record or ErrNotFound.
	GetPatient(ctx context.Context, id string) (Patient, error)
	// UpdatePatient applies fn to the current record and stores the result
	// with Version incremented by one and the part versions stamped
	// (StampPartVersions), atomically: no concurrent update is ever lost.
	// fn must not change ID or PharmacyID. It returns the stored
	// record, ErrNotFound, or fn's error (nothing written).
	UpdatePatient(ctx context.Context, id string, fn func(Patient) (Patient, error)) (Patient, error)
	// ListPatients returns up to limit patients of a pharmacy, ordered by
	// ID, starting after the ID `after` ("" for the first page).
	ListPatients(ctx context.Context, pharmacyID, after string, limit int) ([]Patient, error)

	// PutActivationCode stores a one-time activation code, keyed by the hash
	// of the code. It replaces any earlier code of the same patient, which
	// stops working. ErrAlreadyExists if the hash is taken.
	PutActivationCode(ctx context.Context, c ActivationCode) error
	// GetActivationCode returns the live code or ErrNotFound (unknown,
	// replaced, consumed or expired at now).
	GetActivationCode(ctx context.Context, codeHash string, now time.Time) (ActivationCode, error)
	// ConsumeActivationCode deletes the code and returns it, atomically: of
	// two concurrent callers exactly one succeeds, the other gets
	// ErrNotFound, as does a caller after expiry.
	ConsumeActivationCode(ctx context.Context, codeHash string, now time.Time) (ActivationCode, error)
}

// Sessions holds refresh-token families.
type Sessions interface {
	// CreateRefreshToken stores the first token of a new family.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RotateRefreshToken spends the token with hash oldHash and stores
	// r.Next in the same family, atomically: Next's FamilyID, Subject and
	// Role are overwritten with the spent token's (the caller sets Hash,
	// ExpiresAt and CreatedAt). r.Sealed is kept with the spent token.
	//
	// A repeat, the same oldHash presented again before the grace that
	// its rotation was given has passed and while its successor is still
	// the family's unspent token, writes nothing and returns that
	// successor and its Sealed as the first rotation stored them, with
	// Repeat set; r is ignored. So concurrent or retried rotations of one
	// token all get the one successor, and no rotation ever leaves two
	// live tokens in a family.
	//
	// Errors: ErrNotFound (unknown, or expired at now); ErrSessionRevoked
	// when the family was revoked earlier; ErrTokenReused when oldHash was
	// already spent and this is not a repeat, in which case the whole
	// family, including its newest token, is revoked.
	RotateRefreshToken(ctx context.Context, oldHash string, r Rotation, now time.Time) (Rotated, error)
	// RevokeRefreshFamily revokes every token of the family that holds the
	// token with this hash. ErrNotFound if the hash is unknown; revoking a
	// revoked family again is not an error.
	RevokeRefreshFamily(ctx context.Context, tokenHash string) error
}

// Rotation is what a caller asks RotateRefreshToken for.
type Rotation struct {
	// Next is the successor token.
	Next RefreshToken
	// Sealed is the successor's clear value sealed so that only a holder
	// of the spent token can open it (the store never sees either clear
	// value); a repeat gets it back.
	Sealed []byte
	// Grace is how long after this rotation a repeat of the spent token
	// still gets the successor; zero means a repeat is always a reuse.
	Grace time.Duration
}

// Rotated is the outcome of RotateRefreshToken.
type Rotated struct {
	Spent  RefreshToken // the token presented
	Next   RefreshToken // the family's successor
	Sealed []byte       // the successor's sealed clear value
	Repeat bool         // a repeat within the grace: nothing was written
}

// Throttle counts attempts for rate limits shared by every process.
type Throttle interface {
	// Allow counts one attempt against the fixed window of length window
	// that holds now, for key, and reports whether the attempt is within
	// limit. retryAfter is how long until the window resets when it is not.
	// Counts are shared by every process using the store.
	Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (ok bool, retryAfter time.Duration, err error)
	// ForgetAttempts takes back up to n attempts (all of them when n <= 0)
	// from key's count in the fixed window of length window that holds
	// now, so that only failures stay counted: a caller counts an attempt
	// with Allow before checking it, and forgets it when it succeeds.
	// A missing count is not an error.
	ForgetAttempts(ctx context.Context, key string, n int, window time.Duration, now time.Time) error
}

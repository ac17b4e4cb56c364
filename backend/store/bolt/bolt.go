// Package bolt is the embedded default storage backend: one bbolt file, no
// external service, safe for many goroutines of one process. A second
// process that opens the same file fails fast (see Open).
//
// Every operation runs in one bbolt transaction; bbolt serializes writers,
// so read-modify-write steps (UpdatePatient, token rotation, rate-limit
// counters) are atomic without retries. Writes of concurrent callers share
// a transaction and its fsync (groupCommit), each still returning only
// once its own write is durable. A context is checked before the
// transaction starts; a transaction that has started runs to its end, so a
// deadline does not bound the wait for bbolt's single writer slot.
//
// Layout: one bucket per record kind plus index buckets (pharmacy →
// patients, e-mail → account, patient → activation code, refresh family →
// tokens, patient → audit events). Values are one format byte and a CBOR
// record, so the encoding can change without rewriting the file. PHI is
// sealed at rest (sealing.go): every value that names a patient or a
// medicine is encrypted under the patient's own data key, accounts and
// invites under the directory key, and index keys that would hold an
// e-mail, a code hash, a throttle key or a name are blind indexes. Codes,
// invites, refresh tokens and rate-limit counters that expire are listed in
// an expiry index; write calls that are handed a now (Consume*, Rotate*,
// Allow) delete a bounded batch of dead ones as they pass.
//
// Revoking a refresh family deletes its tokens: afterwards they are unknown
// (store.ErrNotFound), including a spent one presented again.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/tink-crypto/tink-go/v2/tink"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/recordcache"
	"github.com/mtmapp/mtm/backend/store/seal"
)

// ErrInUse means another process (normally another mtmd) holds the data
// file's lock. Open returns it, wrapped, when the lock is not acquired
// within Options.Timeout.
var ErrInUse = errors.New("data dir is in use by another mtmd")

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// Options configure Open.
type Options struct {
	// Logger receives operational events (never record contents). Nil
	// means slog.Default().
	Logger *slog.Logger
	// Timeout bounds the wait for the data file's exclusive lock; zero
	// means DefaultTimeout. Negative is refused.
	Timeout time.Duration
	// NoSync skips fsync after each commit: much faster, and a crash of
	// the machine may lose acknowledged writes. For tests and benchmarks
	// only.
	NoSync bool
	// KEK is the key-encryption key that wraps the store's data keys
	// (store/seal). Nil means the local key file seal.LocalKEKPath of the
	// data file's directory, created on first use (zero-config start). A
	// store whose keys another KEK wrapped fails to open with
	// seal.ErrWrongKEK.
	KEK tink.AEAD
	// NoSeal writes values and index keys as the store did before PHI was
	// sealed at rest (clear CBOR, clear e-mails and code hashes in keys).
	// For benchmarks and migration tests only: reads accept both forms
	// whatever it says, and Reencrypt seals regardless.
	NoSeal bool
	// RecordCache is how many decoded patient records stay in memory
	// (recordcache.ForEntries; 0 means recordcache.DefaultEntries), and
	// KeyCache how many patients' data keys stay open (0 means
	// seal.DefaultKeyCache).
	RecordCache, KeyCache int
}

// Store is the bbolt backend of store.Store. It is safe for concurrent
// use by many goroutines.
type Store struct {
	db    *bbolt.DB
	log   *slog.Logger
	codec codec
	// writes runs every write transaction (update): concurrent writes
	// share one commit and one fsync.
	writes *groupCommit
	// vault seals PHI at rest (sealing.go); noSeal writes it clear.
	vault  *seal.Vault
	noSeal bool
	// patients keeps decoded patient records by id and stored bytes.
	patients *recordcache.Cache
}

var _ store.Store = (*Store)(nil)

// Bucket names, one per record kind plus the indexes.
var (
	bucketPharmacies      = []byte("pharmacies")        // id → Pharmacy
	bucketAccounts        = []byte("accounts")          // id → Account
	bucketAccountEmails   = []byte("account_emails")    // normalized e-mail → account id
	bucketPatients        = []byte("patients")          // id → Patient
	bucketPharmacyIndex   = []byte("pharmacy_patients") // pharmacy id → {patient id → ""}
	bucketCodes           = []byte("activation_codes")  // code hash → ActivationCode
	bucketCodesByPatient  = []byte("activation_by_pat") // patient id → code hash
	bucketTokens          = []byte("refresh_tokens")    // token hash → refreshRecord
	bucketFamilies        = []byte("refresh_families")  // family id → {token hash → ""}
	bucketCounters        = []byte("rate_counters")     // key → counter
	bucketInvites         = []byte("caregiver_invites") // code hash → Invite
	bucketAudit           = []byte("audit")             // patient id → {event id → AuditEvent}; its sequence counts the events kept
	bucketAuditCounts     = []byte("audit_counts")      // patient id → uint64 events kept, for older windows (read once, then kept in the sequence)
	bucketAuditRefused    = []byte("audit_refused")     // patient id → {event id → AuditEvent}, refusals only; the same sequence
	bucketAuditRefCounts  = []byte("audit_ref_counts")  // the same for refusals
	bucketExpiry          = []byte("expiry")            // expiry time|kind|id → ""
	bucketThreads         = []byte("threads")           // thread id → Thread (see messaging.go)
	bucketThreadMessages  = []byte("thread_messages")   // thread id → {messages, idempotency keys}
	bucketPatientThreads  = []byte("patient_threads")   // patient id → {index key → ""}
	bucketInbox           = []byte("inbox")             // pharmacy id → {state → {index key → ""}}
	bucketInboxFeed       = []byte("inbox_feed")        // pharmacy id → {cursor ↔ thread id}
	bucketSigningKeys     = []byte("signing_keys")      // kid → SigningKey (sealed)
	bucketConsoleSessions = []byte("console_sessions")  // id hash → ConsoleSession
	bucketChanges         = []byte("patient_changes")   // patient id → {seq (8 bytes) → Change} (see changes.go)
	bucketParts           = []byte("patient_parts")     // patient id → PartVersions
	bucketVault           = []byte("vault")             // "keys" → seal.VaultKeys (wrapped by the KEK)
	bucketPatientKeys     = []byte("patient_keys")      // patient id → wrapped data key
	bucketNameIndex       = []byte("patient_name_dob")  // blind(pharmacy, family name, birth date) \x00 patient id → ""

	allBuckets = [][]byte{
		bucketPharmacies, bucketAccounts, bucketAccountEmails, bucketPatients,
		bucketPharmacyIndex, bucketCodes, bucketCodesByPatient, bucketTokens,
		bucketFamilies, bucketCounters, bucketInvites, bucketAudit,
		bucketAuditCounts, bucketAuditRefused, bucketAuditRefCounts, bucketExpiry,
		bucketRemindersDue, bucketReminderKeys, bucketReminderLease, bucketRemindersSent, bucketRemindersSExp, bucketNotifications, bucketDoses,
		bucketThreads, bucketThreadMessages, bucketPatientThreads, bucketInbox, bucketInboxFeed,
		bucketSigningKeys, bucketConsoleSessions, bucketWorklists, bucketChanges, bucketParts,
		bucketVault, bucketPatientKeys, bucketNameIndex,
	}
)

// Open opens (creating if needed) the store in the bbolt file at path and
// takes its exclusive lock. If another process holds the lock, Open fails
// after opts.Timeout with an error wrapping ErrInUse.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("bolt.Open: negative lock timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c, err := newCodec()
	if err != nil {
		return nil, fmt.Errorf("bolt.Open: %w", err)
	}
	if opts.KEK == nil {
		kekPath := seal.LocalKEKPath(filepath.Dir(path))
		kek, created, err := seal.LoadOrCreateLocalKEK(kekPath)
		if err != nil {
			return nil, fmt.Errorf("bolt.Open: %w", err)
		}
		if created {
			opts.Logger.Warn("created a local key-encryption key for PHI at rest: back it up with the data file, which is unreadable without it", "path", kekPath)
		}
		opts.KEK = kek
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.Timeout,
		NoSync:       opts.NoSync,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt.Open: %s: %w (lock not acquired within %v)", path, ErrInUse, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt.Open: %s: %w", path, err)
	}
	var keys seal.VaultKeys
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		keys, err = vaultKeys(tx, opts.KEK)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt.Open: %s: creating buckets: %w", path, err)
	}
	vault, err := seal.OpenVault(opts.KEK, keys, opts.KeyCache)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt.Open: %s: %w", path, err)
	}
	opts.Logger.Info("bolt store opened", "path", path, "no_sync", opts.NoSync, "no_seal", opts.NoSeal)
	return &Store{db: db, log: opts.Logger, codec: c, writes: newGroupCommit(db), vault: vault, noSeal: opts.NoSeal, patients: recordcache.ForEntries(opts.RecordCache)}, nil
}

// Close releases the file and its lock. Calls after the first return nil.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt.Close: %w", err)
	}
	return nil
}

// view runs fn in a read-only transaction after checking ctx.
func (s *Store) view(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// update runs fn in a read-write transaction after checking ctx, and
// returns once that transaction committed (durably, unless NoSync); an
// error from fn rolls back everything fn wrote. The transaction is shared
// with the writes of concurrent callers (groupCommit): fn may run more than
// once, so it must read what it depends on from tx and leave nothing
// outside it but assignments a second run makes again (reset what it
// accumulates at its top). A commit the disk refuses (full, read-only)
// wraps store.ErrUnavailable.
func (s *Store) update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return diskFailure(s.writes.update(fn))
}

// Ping reports whether the store can serve reads: it runs an empty
// read-only transaction. Whether writes fit on the disk is the data
// directory's check, not the store's.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.view(ctx, func(*bbolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("bolt.Ping: %w", err)
	}
	return nil
}

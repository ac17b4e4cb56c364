package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/klauspost/compress/zstd"
	"github.com/redis/go-redis/v9"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/batch"
	"github.com/mtmapp/mtm/backend/store/recordcache"
	"github.com/mtmapp/mtm/backend/store/seal"
)

var _ store.Store = (*Store)(nil)

// Options tunes a Store. The zero value is usable: every field has a default.
type Options struct {
	// Prefix starts every key, so several deployments can share one
	// Redis. Default "mtm".
	Prefix string
	// Timeout bounds every Redis call made by one store method (each
	// round trip gets its own Timeout, within the caller's deadline).
	// Default 2s.
	Timeout time.Duration
	// MaxUpdateAttempts bounds how often UpdatePatient runs its closure
	// when concurrent writers keep winning. Default 64.
	MaxUpdateAttempts int
	// OpTTL is how long a write's reply is kept for an idempotent re-run
	// after a connection error. Default max(4*Timeout, 10s).
	OpTTL time.Duration
	// ClaimGrace is how old an e-mail claim without an account must be
	// before another CreateAccount may take it over. Default 1 minute.
	ClaimGrace time.Duration
	// ExpiryGrace is added to the Redis TTL of expiring records beyond
	// their ExpiresAt. Default 24h.
	ExpiryGrace time.Duration
	// Now is the clock used for claim ages and garbage-collection TTLs
	// (never for deciding whether a record is live; callers pass now).
	// Default time.Now.
	Now func() time.Time
	// Rand is the source of operation ids and retry jitter; it must be
	// safe for concurrent use. Default crypto/rand.Reader.
	Rand io.Reader
	// ReplicaAcks is how many replicas must confirm a record write (Redis
	// WAIT) before it is acknowledged. 0, the default, acknowledges a
	// write once the primary applied it, which a failover can lose.
	ReplicaAcks int
	// ReplicaTimeout bounds that wait: a write not confirmed in time fails
	// with store.ErrNotReplicated (and store.ErrUnavailable); it was applied
	// on the primary and may or may not survive a failover. It must be
	// shorter than Timeout. Default 500ms.
	ReplicaTimeout time.Duration
	// KEK is the key-encryption key (backend/store/seal) that wraps the
	// store's vault keys and every patient's data key. Required: New
	// refuses to open without one, and fails with seal.ErrWrongKEK when
	// the store's keys were wrapped by another.
	KEK tink.AEAD
	// NoSeal writes new values unsealed, as before sealing existed (for
	// benchmarks that measure what sealing costs); reads accept sealed and
	// unsealed values either way. Keys still use blind indexes.
	NoSeal bool
	// KeyCache is how many patients' data keys stay open in memory
	// (default seal.DefaultKeyCache).
	KeyCache int
	// RecordCache is how many decoded patient records stay in memory
	// (recordcache.ForEntries; default recordcache.DefaultEntries).
	RecordCache int
	// Instrument, when set, is called by Open with the new client before
	// any command is sent, to add hooks (tracing) that every node's
	// connections see. New leaves instrumenting to its caller.
	Instrument func(redis.UniversalClient) error
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "mtm"
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.MaxUpdateAttempts <= 0 {
		o.MaxUpdateAttempts = 64
	}
	if o.OpTTL <= 0 {
		o.OpTTL = max(4*o.Timeout, 10*time.Second)
	}
	if o.ClaimGrace <= 0 {
		o.ClaimGrace = time.Minute
	}
	if o.ExpiryGrace <= 0 {
		o.ExpiryGrace = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.ReplicaTimeout <= 0 {
		o.ReplicaTimeout = min(500*time.Millisecond, o.Timeout/2)
	}
	// WAIT counts in milliseconds, and WAIT 0 would block until Timeout.
	o.ReplicaTimeout = max(o.ReplicaTimeout, time.Millisecond)
	return o
}

// Store is the Redis implementation of store.Store. It is safe for
// concurrent use by many goroutines and by many processes sharing one
// Redis deployment.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
	k    keys
	enc  cbor.EncMode
	dec  cbor.DecMode
	zenc *zstd.Encoder
	zdec *zstd.Decoder
	// patientFormat is the format new patient records are written in.
	patientFormat byte
	scripts       scripts
	vault         *seal.Vault
	wrapped       wrappedKeys
	scriptCalls   *batch.Group[*scriptCall] // concurrent script calls share a pipeline (scriptgroup.go)
	// threadOwners remembers the patient of each thread read here, so a
	// read of the thread fetches the data key in the same round trip.
	threadOwners threadOwners
	owned        bool // Close closes rdb
	// patients keeps decoded patient records by id and stored bytes.
	patients *recordcache.Cache
	// testHookSealed, set by tests only, runs after a thread or code was
	// sealed and before it is stored.
	testHookSealed func(patientID string)
}

// New returns a Store over client, which it does not own: Close leaves the
// client open. It pings Redis within Options.Timeout and returns an error
// wrapping store.ErrUnavailable when Redis cannot be reached. The client
// should have ContextTimeoutEnabled set, so that deadlines reach the socket
// (Open does that).
func New(ctx context.Context, client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore.New: missing redis client")
	}
	opts = opts.withDefaults()
	if opts.KEK == nil {
		return nil, fmt.Errorf("redisstore.New: %w", errNoKEK)
	}
	if opts.ReplicaAcks < 0 {
		return nil, fmt.Errorf("redisstore.New: ReplicaAcks %d is negative", opts.ReplicaAcks)
	}
	if opts.ReplicaTimeout >= opts.Timeout {
		return nil, fmt.Errorf("redisstore.New: ReplicaTimeout %s must be shorter than Timeout %s", opts.ReplicaTimeout, opts.Timeout)
	}
	enc, err := cbor.EncOptions{}.EncMode()
	if err != nil {
		return nil, fmt.Errorf("redisstore.New: %w", err)
	}
	dec, err := cbor.DecOptions{}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("redisstore.New: %w", err)
	}
	zenc, zdec, err := newCompressors()
	if err != nil {
		return nil, fmt.Errorf("redisstore.New: %w", err)
	}
	s := &Store{rdb: client, opts: opts, k: keys{prefix: opts.Prefix}, enc: enc, dec: dec, zenc: zenc, zdec: zdec, scriptCalls: newScriptGroup(),
		patientFormat: currentPatientFormat, scripts: newScripts(), patients: recordcache.ForEntries(opts.RecordCache)}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, s.fail("redisstore.New", err)
	}
	s.wrapped.max = max(opts.KeyCache, 1)
	if opts.KeyCache <= 0 {
		s.wrapped.max = seal.DefaultKeyCache
	}
	if err := s.openVault(ctx); err != nil {
		return nil, fmt.Errorf("redisstore.New: %w", err)
	}
	return s, nil
}

// Close releases the client when the Store was built by Open; a client
// passed to New stays open.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstore.Close: %w", err)
	}
	return nil
}

// Prefix is the key prefix of this deployment (Options.Prefix), which
// other users of the same Redis, such as wake-ups, share.
func (s *Store) Prefix() string { return s.opts.Prefix }

// Client returns the underlying client, for health checks and tests.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// call runs one round trip under Options.Timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opts.Timeout)
}

// opID returns a fresh operation id for an idempotent write.
func (s *Store) opID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("operation id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// fail wraps err with the operation and maps Redis failures onto the
// store's sentinel errors.
func (s *Store) fail(op string, err error) error {
	switch {
	case errors.Is(err, redis.Nil):
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	case unavailable(err):
		return fmt.Errorf("%s: %w: %w", op, store.ErrUnavailable, err)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// unavailable reports whether err means Redis could not answer in time,
// as opposed to a wrong command or script.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"LOADING ", "CLUSTERDOWN ", "TRYAGAIN ", "MASTERDOWN ", "READONLY ", "MISCONF ", "NOREPLICAS ", "ERR max number of clients", "redis: cluster has no nodes", "redis: all sentinels"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// jitter sleeps a short, growing, randomized time before UpdatePatient's
// next attempt; it returns early with ctx's error.
func (s *Store) jitter(ctx context.Context, attempt int) error {
	var b [1]byte
	_, _ = io.ReadFull(s.opts.Rand, b[:])
	d := time.Duration(min(attempt, 10)) * time.Duration(int(b[0])+1) * 4 * time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// gcTTL is the Redis TTL for a record that stops being live at expires.
func (s *Store) gcTTL(expires time.Time) time.Duration {
	return max(expires.Sub(s.opts.Now()), 0) + s.opts.ExpiryGrace
}

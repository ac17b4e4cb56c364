// Package backends opens the storage backend a deployment is configured
// for. It is the one explicit switch between the embedded bbolt file and
// Redis, shared by mtmd and mtmctl so that both always open the same store.
package backends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/seal"
	"github.com/mtmapp/mtm/backend/wake"
)

// Settings say which backend to open.
type Settings struct {
	// RedisURL selects Redis (single node, Cluster or Sentinel; see
	// redisstore.ParseConfig). Empty selects the embedded store.
	RedisURL string
	// DataDir holds the embedded store's file.
	DataDir string
	// RequireDurable makes Open fail, instead of warning, when Redis is
	// configured so that acknowledged writes can be lost.
	RequireDurable bool
	// ReplicaAcks and ReplicaTimeout: Redis record writes are acknowledged
	// only once that many replicas confirmed them, or fail as unavailable
	// (redisstore.Options).
	ReplicaAcks    int
	ReplicaTimeout time.Duration
	Logger         *slog.Logger
	// InstrumentRedis, when set, adds hooks (tracing) to the Redis client
	// before its first command (redisstore.Options.Instrument).
	InstrumentRedis func(redis.UniversalClient) error

	// The key-encryption key (KEK) that seals the store's keys (PHI at
	// rest, store/seal). KEK, when set, wins (tests); else KEKURI names a
	// key in a cloud KMS whose Tink client the binary registered with
	// seal.RegisterKMS; else KEKFile is a local Tink keyset file (default
	// <DataDir>/phi-kek.json), created 0600 when absent.
	KEK     tink.AEAD
	KEKURI  string
	KEKFile string
	// NoSeal writes values unsealed, as before sealing existed: for the
	// load test's cost comparison only (reads accept both).
	NoSeal bool
	// RecordCache and KeyCache size the store's in-memory caches of
	// decoded records and open data keys (0: the stores' defaults).
	RecordCache, KeyCache int
}

// ErrNoKEK is returned by Open when no key-encryption key is configured
// and none can be created (Redis without a data directory).
var ErrNoKEK = errors.New("no key-encryption key: set --kek-uri (a KMS key) or --kek-file (the local key file every instance shares)")

// KEKFilePath is the local key-encryption key file the settings name: KEKFile,
// else the default in DataDir; "" when neither is set or a KMS is used.
func (s Settings) KEKFilePath() string {
	switch {
	case s.KEKURI != "":
		return ""
	case s.KEKFile != "":
		return s.KEKFile
	case s.DataDir != "":
		return seal.LocalKEKPath(s.DataDir)
	}
	return ""
}

// LoadKEK returns the key-encryption key the settings name (see Settings),
// creating the local key file when it does not exist yet.
func LoadKEK(s Settings) (tink.AEAD, error) {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	switch {
	case s.KEK != nil:
		return s.KEK, nil
	case s.KEKURI != "":
		kek, err := seal.KMSKEK(s.KEKURI)
		if err != nil {
			return nil, fmt.Errorf("--kek-uri: %w (this build registers no KMS client; see README, PHI at rest)", err)
		}
		return kek, nil
	}
	path := s.KEKFilePath()
	if path == "" {
		return nil, ErrNoKEK
	}
	kek, created, err := seal.LoadOrCreateLocalKEK(path)
	if err != nil {
		return nil, fmt.Errorf("--kek-file: %w", err)
	}
	if created {
		s.Logger.Warn("created the key-encryption key file: back it up apart from the data (without it the data cannot be read); every instance sharing this store needs a copy", "kek_file", path)
	}
	return kek, nil
}

// wrongKEK explains seal.ErrWrongKEK to the operator.
func wrongKEK(err error, s Settings, backend string) error {
	if !errors.Is(err, seal.ErrWrongKEK) {
		return err
	}
	which := "--kek-uri " + s.KEKURI
	if s.KEKURI == "" && s.KEK == nil {
		which = "--kek-file " + s.KEKFilePath()
	}
	if backend == "redis" {
		return fmt.Errorf("%w: this store was sealed with another key-encryption key than %s; every mtmd and mtmctl sharing a Redis needs the same one: copy the key file of the first instance (mode 0600) to --kek-file here, or give all of them the same --kek-uri", err, which)
	}
	return fmt.Errorf("%w: the data file was sealed with another key-encryption key than %s; restore the key file that belongs to this data directory (from your backup) or point --kek-file/--kek-uri at it", err, which)
}

// CheckRedisURL reports whether a Redis URL is usable, without connecting.
func CheckRedisURL(raw string) error {
	_, err := redisstore.ParseConfig(raw)
	return err
}

// Open opens the configured store and returns it with the backend's name
// ("bolt" or "redis").
func Open(ctx context.Context, s Settings) (store.Store, string, error) {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	switch {
	case s.RedisURL != "":
		cfg, err := redisstore.ParseConfig(s.RedisURL)
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: redis url: %w", err)
		}
		kek, err := LoadKEK(s)
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: %w", err)
		}
		st, err := redisstore.Open(ctx, cfg, redisstore.Options{ReplicaAcks: s.ReplicaAcks, ReplicaTimeout: s.ReplicaTimeout, Instrument: s.InstrumentRedis,
			KEK: kek, NoSeal: s.NoSeal, RecordCache: s.RecordCache, KeyCache: s.KeyCache})
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: %w", wrongKEK(err, s, "redis"))
		}
		warnings, err := st.CheckDurability(ctx)
		if err != nil {
			st.Close()
			return nil, "", fmt.Errorf("backends.Open: reading Redis persistence settings: %w", err)
		}
		for _, w := range warnings {
			s.Logger.Warn("REDIS CAN LOSE ACKNOWLEDGED WRITES", "problem", w)
		}
		if len(warnings) > 0 && s.RequireDurable {
			st.Close()
			return nil, "", fmt.Errorf("backends.Open: Redis is not durable (--redis-require-durable): %s", strings.Join(warnings, "; "))
		}
		return st, "redis", nil
	default:
		if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("backends.Open: data dir: %w", err)
		}
		kek, err := LoadKEK(s)
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: %w", err)
		}
		st, err := bolt.Open(bootstrap.BoltPath(s.DataDir), bolt.Options{Logger: s.Logger, KEK: kek, NoSeal: s.NoSeal, RecordCache: s.RecordCache, KeyCache: s.KeyCache})
		if errors.Is(err, bolt.ErrInUse) {
			return nil, "", fmt.Errorf("backends.Open: %w: %s is opened by one process at a time; stop the server (or the other mtmctl) and try again", err, s.DataDir)
		}
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: %w", wrongKEK(err, s, "bolt"))
		}
		return st, "bolt", nil
	}
}

// Waker carries "something changed" signals to the watch streams of every
// process sharing the store.
type Waker interface {
	Subscribe(topic string) (wakeups <-chan struct{}, cancel func())
	Notify(ctx context.Context, topics ...string) error
}

// NewWaker returns the wake-up channel that fits the store Open returned:
// Redis pub/sub for Redis, so that several mtmd wake each other's streams,
// and an in-process hub for the embedded store. close releases it.
func NewWaker(ctx context.Context, st store.Store, logger *slog.Logger) (w Waker, close func() error, err error) {
	if rs, ok := st.(*redisstore.Store); ok {
		r, err := wake.NewRedis(ctx, rs.Client(), rs.Prefix(), 0, logger)
		if err != nil {
			return nil, nil, fmt.Errorf("backends.NewWaker: %w", err)
		}
		return r, r.Close, nil
	}
	return wake.NewHub(), func() error { return nil }, nil
}

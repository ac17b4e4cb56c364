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

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
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
		st, err := redisstore.Open(ctx, cfg, redisstore.Options{ReplicaAcks: s.ReplicaAcks, ReplicaTimeout: s.ReplicaTimeout, Instrument: s.InstrumentRedis})
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: %w", err)
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
		st, err := bolt.Open(bootstrap.BoltPath(s.DataDir), bolt.Options{Logger: s.Logger})
		if errors.Is(err, bolt.ErrInUse) {
			return nil, "", fmt.Errorf("backends.Open: %w: %s is opened by one process at a time; stop the server (or the other mtmctl) and try again", err, s.DataDir)
		}
		if err != nil {
			return nil, "", fmt.Errorf("backends.Open: %w", err)
		}
		return st, "bolt", nil
	}
}

// Waker carries "something changed" signals to the watch streams of every
// process sharing the store.
type Waker interface {
	Subscribe(topic string) (wakeups <-chan struct{}, cancel func())
	Notify(ctx context.Context, topic string) error
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

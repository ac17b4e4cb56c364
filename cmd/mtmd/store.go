package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
)

// openStore picks the storage backend: Redis when a URL is configured,
// otherwise the embedded bbolt file in the data directory. It is the only
// place that knows the backends.
func openStore(cfg Config, logger *slog.Logger) (store.Store, string, error) {
	switch {
	case cfg.RedisURL != "":
		return nil, "", errors.New("redis store not built yet: unset --redis-url/MTM_REDIS_URL to use the embedded store")
	default:
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, "", fmt.Errorf("data dir: %w", err)
		}
		st, err := bolt.Open(bootstrap.BoltPath(cfg.DataDir), bolt.Options{Logger: logger})
		if errors.Is(err, bolt.ErrInUse) {
			return nil, "", fmt.Errorf("%w: is another mtmd (or mtmctl bootstrap) running on %s?", err, cfg.DataDir)
		}
		if err != nil {
			return nil, "", err
		}
		return st, "bolt", nil
	}
}

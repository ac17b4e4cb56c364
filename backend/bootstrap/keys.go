package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

// Where the access-token signing keys live (mtmd and mtmctl --signing-keys).
const (
	// KeysInStore keeps the keys in the store, sealed with the wrapping key
	// of --signing-key-wrap-file: instances sharing a Redis share the keys.
	KeysInStore = "store"
	// KeysInDir keeps the keys as files in --signing-key-dir.
	KeysInDir = "dir"
)

// WrapKeyPath is the default file of the key that seals signing keys in
// the store, in dataDir.
func WrapKeyPath(dataDir string) string { return filepath.Join(dataDir, "signing-key-wrap.key") }

// DefaultKeySource is where the signing keys live when the configuration
// does not say: in the store when the store is Redis (several instances
// then share them without a shared volume) and no key directory was named,
// in a directory otherwise (the embedded store serves one process, and an
// operator who names a directory keeps the keys already there).
func DefaultKeySource(redisURL, signingKeyDir string) string {
	if redisURL != "" && signingKeyDir == "" {
		return KeysInStore
	}
	return KeysInDir
}

// KeySettings say where the signing keys are.
type KeySettings struct {
	Source   string // KeysInStore or KeysInDir
	Dir      string // with KeysInDir
	WrapFile string // with KeysInStore
}

// OpenKeySet loads the signing keys, creating a first key when there is
// none. With KeysInStore it reads the wrapping key from WrapFile, creating
// that file only when the store holds no key yet (then it logs that every
// other instance needs a copy); when the store has keys and this instance
// has no wrapping key it fails, saying so.
func OpenKeySet(ctx context.Context, s KeySettings, st store.SigningKeys, now func() time.Time, logger *slog.Logger) (*auth.KeySet, error) {
	switch s.Source {
	case KeysInDir:
		return auth.LoadOrCreateKeySet(s.Dir, now)
	case KeysInStore:
	default:
		return nil, fmt.Errorf("bootstrap.OpenKeySet: unknown key source %q (want %s or %s)", s.Source, KeysInStore, KeysInDir)
	}
	existing, err := st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap.OpenKeySet: %w", err)
	}
	wrap, created, err := auth.LoadOrCreateWrapKey(s.WrapFile, len(existing) == 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bootstrap.OpenKeySet: the store holds %d signing keys, sealed with a wrapping key this instance lacks: copy --signing-key-wrap-file from an instance that has it to %s", len(existing), s.WrapFile)
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap.OpenKeySet: %w", err)
	}
	if created && logger != nil {
		logger.Warn("created the wrapping key of the signing keys kept in the store: give every other instance a copy (--signing-key-wrap-file)", "file", s.WrapFile)
	}
	return auth.LoadOrCreateStoreKeySet(ctx, st, wrap, now)
}

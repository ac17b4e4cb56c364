package bolt

import (
	"log/slog"
	"path/filepath"
	"testing"
)

// openNoSync opens a store in a new temporary directory for the package's
// own tests, without fsync (their writes need no durability), closed when
// the test ends.
func openNoSync(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "mtm.db"), Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

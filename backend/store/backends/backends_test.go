package backends

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadKEK(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	if _, err := LoadKEK(Settings{RedisURL: "redis://127.0.0.1:1", Logger: quiet}); !errors.Is(err, ErrNoKEK) {
		t.Errorf("Redis without a data dir or key file: %v, want ErrNoKEK", err)
	}
	dir := t.TempDir()
	s := Settings{DataDir: dir, Logger: quiet}
	if got := s.KEKFilePath(); got != filepath.Join(dir, "phi-kek.json") {
		t.Errorf("default key file %q", got)
	}
	a, err := LoadKEK(s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "phi-kek.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file after the first start: %v, %v; want mode 0600", st, err)
	}
	b, err := LoadKEK(s)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := a.Encrypt([]byte("wrapped"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Decrypt(ct, nil); err != nil || string(pt) != "wrapped" {
		t.Errorf("the second start has another key: %q, %v", pt, err)
	}
	if (Settings{DataDir: dir, KEKURI: "gcp-kms://x"}).KEKFilePath() != "" {
		t.Error("a KMS URI still names a key file")
	}
	if _, err := LoadKEK(Settings{KEKURI: "gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k", Logger: quiet}); err == nil {
		t.Error("a KMS URI without a registered client was accepted")
	}
}

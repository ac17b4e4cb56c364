package auth

import (
	"bytes"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
)

// openBolt opens a fresh embedded store (the real backend; the Redis
// backend runs the same contract in its conformance suite and in mtmd's
// two-instance test).
func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func wrapKey(t *testing.T) []byte {
	t.Helper()
	key, created, err := LoadOrCreateWrapKey(filepath.Join(t.TempDir(), "wrap.key"), true)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateWrapKey: created=%v, %v", created, err)
	}
	return key
}

func storeTokens(t *testing.T, keys *KeySet, clock *testClock) *Tokens {
	t.Helper()
	tok, err := NewTokens(keys, TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestStoreKeySetSharedByInstances: two instances on one store, with the
// same wrapping key, verify each other's tokens, including one signed by a
// key the other rotated in a moment ago (before any periodic reload).
func TestStoreKeySetSharedByInstances(t *testing.T) {
	st, wrap, clock := openBolt(t), wrapKey(t), newTestClock()
	a, err := LoadOrCreateStoreKeySet(t.Context(), st, wrap, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateStoreKeySet(t.Context(), st, wrap, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if ga, gb := a.KeyIDs(), b.KeyIDs(); len(ga) != 1 || len(gb) != 1 || ga[0] != gb[0] {
		t.Fatalf("instances hold keys %v and %v, want the same single key", ga, gb)
	}
	ta, tb := storeTokens(t, a, clock), storeTokens(t, b, clock)
	p := Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"}
	tok, _, err := ta.IssueAccess(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Verify(tok); err != nil {
		t.Fatalf("B does not verify A's token: %v", err)
	}

	if err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok, _, err = ta.IssueAccess(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Verify(tok); err != nil {
		t.Fatalf("B does not verify a token of the key A just rotated in: %v", err)
	}
	if got := b.KeyIDs(); len(got) != 2 || got[0] != a.KeyIDs()[0] {
		t.Fatalf("B's keys after meeting the new kid: %v, want A's %v", got, a.KeyIDs())
	}

	// Retiring through B removes the key for A at its next reload.
	old := a.KeyIDs()[1]
	if err := b.Retire(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := a.KeyIDs(); len(got) != 1 || got[0] == old {
		t.Fatalf("A's keys after B retired %s: %v", old, got)
	}
}

// TestStoreKeySetSealsKeys: what the store holds is not the private key,
// and an instance given another wrapping key refuses to start, saying why.
func TestStoreKeySetSealsKeys(t *testing.T) {
	st, wrap, clock := openBolt(t), wrapKey(t), newTestClock()
	keys, err := LoadOrCreateStoreKeySet(t.Context(), st, wrap, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.ListSigningKeys(t.Context())
	if err != nil || len(stored) != 1 {
		t.Fatalf("store holds %d keys (%v), want 1", len(stored), err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(keys.ring.Load().signing().private)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored[0].Sealed, der[len(der)-32:]) {
		t.Fatal("the store holds the private key in the clear")
	}
	_, err = LoadOrCreateStoreKeySet(t.Context(), st, wrapKey(t), clock.Now)
	if err == nil || !strings.Contains(err.Error(), "--signing-key-wrap-file") {
		t.Fatalf("loading with another wrapping key: %v, want a refusal naming --signing-key-wrap-file", err)
	}
	// A sealed key moved under another kid does not open either.
	stored[0].KID = "another-kid"
	if err := st.PutSigningKey(t.Context(), stored[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateStoreKeySet(t.Context(), st, wrap, clock.Now); err == nil {
		t.Fatal("a sealed key stored under another kid was accepted")
	}
}

// syncBuffer is a log destination that the verifying goroutine writes
// while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestUnknownKIDLogsHint: instances that do not share keys refuse each
// other's tokens, and the refusing one says why in its log, once.
func TestUnknownKIDLogsHint(t *testing.T) {
	clock := newTestClock()
	a, err := LoadOrCreateStoreKeySet(t.Context(), openBolt(t), wrapKey(t), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateStoreKeySet(t.Context(), openBolt(t), wrapKey(t), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	b.LogUnknownKeys(slog.New(slog.NewTextHandler(&log, nil)))
	tok, _, err := storeTokens(t, a, clock).IssueAccess(Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"})
	if err != nil {
		t.Fatal(err)
	}
	tb := storeTokens(t, b, clock)
	for range 3 {
		if _, err := tb.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("B verified a token of a key it does not have: %v", err)
		}
	}
	out := log.String()
	if n := strings.Count(out, "kid unknown"); n != 1 {
		t.Fatalf("hint logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, a.KeyIDs()[0]) || !strings.Contains(out, "--signing-keys store") {
		t.Fatalf("hint does not name the kid and the fix:\n%s", out)
	}
	if strings.Contains(out, tok) {
		t.Fatal("the hint logs the token")
	}
}

func TestLoadOrCreateWrapKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wrap.key")
	if _, _, err := LoadOrCreateWrapKey(path, false); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file without create: %v, want not exist", err)
	}
	key, created, err := LoadOrCreateWrapKey(path, true)
	if err != nil || !created || len(key) != WrapKeySize {
		t.Fatalf("create: %d bytes, created=%v, %v", len(key), created, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("wrap key file mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
	again, created, err := LoadOrCreateWrapKey(path, true)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("second load: created=%v, same=%v, %v", created, bytes.Equal(again, key), err)
	}
	for name, c := range map[string]struct {
		text string
		mode os.FileMode
	}{
		"readable by others": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 0o644},
		"too short":          {"c2hvcnQ=", 0o600},
		"not base64":         {"not a key at all!", 0o600},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(c.text), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateWrapKey(p, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// TestKeysCommand: an operator lists, rotates and retires signing keys; the
// newest key signs, and the last key cannot be retired.
func TestKeysCommand(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	out, _, err := c.run("keys", "list", "--signing-key-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Fields(out)[0]
	if !strings.Contains(out, first+"\tsigns") {
		t.Fatalf("list = %q", out)
	}
	out, _, err = c.run("keys", "rotate", "--signing-key-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.HasPrefix(lines[0], first) || !strings.HasSuffix(lines[0], "\tsigns") || lines[1] != first+"\tverifies" {
		t.Fatalf("after rotate: %q", out)
	}
	// A server loading the directory signs with the key the list says signs.
	if kid := signingKID(t, dir); kid != strings.Fields(lines[0])[0] {
		t.Fatalf("tokens are signed with %s, the list says %s signs", kid, lines[0])
	}
	out, _, err = c.run("keys", "retire", "--kid", first, "--signing-key-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, first) || len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Fatalf("after retire: %q", out)
	}
	last := strings.Fields(out)[0]
	if _, _, err := c.run("keys", "retire", "--kid", last, "--signing-key-dir", dir); err == nil {
		t.Fatal("retiring the last key succeeded")
	}
	if _, _, err := c.run("keys", "list"); err == nil || !strings.Contains(err.Error(), "--signing-key-dir") {
		t.Fatalf("keys without a directory: %v", err)
	}
}

// TestKeysCommandStore: the same operations on keys kept in Redis, sealed
// with the wrapping key file; a copy of the file works, another key does
// not.
func TestKeysCommandStore(t *testing.T) {
	c := newCLI(t)
	addr, _ := redistest.StartServer(t)
	url := "redis://" + addr
	wrap := filepath.Join(t.TempDir(), "wrap.key")
	c.env["MTM_KEK_FILE"] = filepath.Join(t.TempDir(), "phi-kek.json") // the servers' key-encryption key
	out, _, err := c.run("keys", "list", "--redis-url", url, "--signing-key-wrap-file", wrap)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.Fields(out)[0]
	if _, err := os.Stat(wrap); err != nil {
		t.Fatalf("no wrapping key created for the empty store: %v", err)
	}
	out, _, err = c.run("keys", "rotate", "--redis-url", url, "--signing-key-wrap-file", wrap)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || lines[1] != first+"\tverifies" {
		t.Fatalf("after rotate: %q", out)
	}
	out, _, err = c.run("keys", "retire", "--kid", first, "--redis-url", url, "--signing-key-wrap-file", wrap)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, first) {
		t.Fatalf("after retire: %q", out)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := auth.LoadOrCreateWrapKey(other, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("keys", "list", "--redis-url", url, "--signing-key-wrap-file", other); err == nil || !strings.Contains(err.Error(), "--signing-key-wrap-file") {
		t.Fatalf("list with another wrapping key: %v", err)
	}
	if _, _, err := c.run("keys", "list", "--redis-url", url, "--signing-key-wrap-file", filepath.Join(t.TempDir(), "missing.key")); err == nil || !strings.Contains(err.Error(), "copy --signing-key-wrap-file") {
		t.Fatalf("list without the wrapping key: %v", err)
	}
}

// signingKID issues an access token as a server on the key directory would
// and returns the kid it is signed with.
func signingKID(t *testing.T, dir string) string {
	t.Helper()
	keys, err := auth.LoadOrCreateKeySet(dir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: "test", Audience: "test", AccessTTL: 15 * time.Minute, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := tokens.IssueAccess(auth.Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"})
	if err != nil {
		t.Fatal(err)
	}
	seg, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	p := Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"}
	oldKID := f.keys.KeyIDs()[0]
	oldTok := f.issue(t, p)

	if err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	ids := f.keys.KeyIDs()
	if len(ids) != 2 || ids[1] != oldKID || ids[0] == oldKID {
		t.Fatalf("KeyIDs after Rotate = %v, want [new, %s]", ids, oldKID)
	}
	newKID := ids[0]

	if got, err := f.tokens.Verify(oldTok); err != nil || got != p {
		t.Errorf("token of the old key after Rotate: Verify = (%+v, %v), want %+v", got, err, p)
	}
	newTok := f.issue(t, p)
	if kid := headerKID(t, newTok); kid != newKID {
		t.Errorf("new token kid = %s, want the new key %s", kid, newKID)
	}
	assertJWKS(t, f.tokens, ids)

	if err := f.keys.Retire(t.Context(), oldKID); err != nil {
		t.Fatalf("Retire(old): %v", err)
	}
	if _, err := f.tokens.Verify(oldTok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token of the retired key: Verify = %v, want ErrInvalidToken", err)
	}
	if _, err := f.tokens.Verify(newTok); err != nil {
		t.Errorf("token of the live key after Retire(old): %v", err)
	}
	assertJWKS(t, f.tokens, []string{newKID})

	if err := f.keys.Retire(t.Context(), newKID); !errors.Is(err, ErrLastKey) {
		t.Errorf("Retire(last key) = %v, want ErrLastKey", err)
	}
	if err := f.keys.Retire(t.Context(), oldKID); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Retire(already retired) = %v, want ErrUnknownKey", err)
	}
	if _, err := f.tokens.Verify(newTok); err != nil {
		t.Errorf("refused Retire still broke the last key: %v", err)
	}
}

func TestRetireNewestFallsBackToPrevious(t *testing.T) {
	f := newFixture(t)
	first := f.keys.KeyIDs()[0]
	if err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Retire(t.Context(), f.keys.KeyIDs()[0]); err != nil {
		t.Fatal(err)
	}
	tok := f.issue(t, Principal{Subject: "pt_1", Role: store.RolePatient})
	if kid := headerKID(t, tok); kid != first {
		t.Errorf("after retiring the newest key, tokens are signed by %s, want %s", kid, first)
	}
}

func TestKeysPersistAcrossLoads(t *testing.T) {
	f := newFixture(t)
	if err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := f.issue(t, Principal{Subject: "pt_1", Role: store.RolePatient})

	again, err := LoadOrCreateKeySet(f.dir, f.clock.Now)
	if err != nil {
		t.Fatalf("second LoadOrCreateKeySet: %v", err)
	}
	if got, want := again.KeyIDs(), f.keys.KeyIDs(); !slices.Equal(got, want) {
		t.Errorf("reloaded KeyIDs = %v, want %v", got, want)
	}
	restarted, err := NewTokens(again, TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Verify(tok); err != nil {
		t.Errorf("token issued before restart: %v", err)
	}

	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("key directory holds %d entries, want 2 key files", len(entries))
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", e.Name(), perm)
		}
	}
}

func TestReloadSeesAnotherProcessRotation(t *testing.T) {
	f := newFixture(t)
	other, err := LoadOrCreateKeySet(f.dir, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got, want := f.keys.KeyIDs(), other.KeyIDs(); !slices.Equal(got, want) {
		t.Errorf("KeyIDs after Reload = %v, want %v", got, want)
	}
}

func TestLoadOrCreateKeySetRefusesBadDirectory(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"world-readable key", func(t *testing.T, dir string) {
			chmodAll(t, dir, 0o644)
		}},
		{"corrupt key", func(t *testing.T, dir string) {
			writeAll(t, dir, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
		}},
		{"not PEM", func(t *testing.T, dir string) { writeAll(t, dir, []byte("hello")) }},
		{"renamed key", func(t *testing.T, dir string) {
			name := onlyKeyFile(t, dir)
			stamp, _, _ := strings.Cut(filepath.Base(name), "_")
			if err := os.Rename(name, filepath.Join(dir, stamp+"_somebodyelse.pem")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(t, f.dir)
			if _, err := LoadOrCreateKeySet(f.dir, f.clock.Now); err == nil {
				t.Error("LoadOrCreateKeySet accepted the directory")
			}
		})
	}
}

func TestLoadOrCreateKeySetCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys", "access")
	keys, err := LoadOrCreateKeySet(dir, newTestClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(keys.KeyIDs()); n != 1 {
		t.Errorf("a fresh key set has %d keys, want 1", n)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("key directory mode %o, want 700", perm)
	}
}

func TestJWKSHandlerMethods(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method string
		status int
	}{
		{http.MethodGet, http.StatusOK},
		{http.MethodHead, http.StatusOK},
		{http.MethodPost, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			rec := httptest.NewRecorder()
			f.tokens.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(tc.method, JWKSPath, nil))
			if rec.Code != tc.status {
				t.Errorf("%s %s = %d, want %d", tc.method, JWKSPath, rec.Code, tc.status)
			}
		})
	}
}

// assertJWKS checks that the JWKS document lists exactly kids, as ES256
// signing keys, without private key material.
func assertJWKS(t *testing.T, tokens *Tokens, kids []string) {
	t.Helper()
	rec := httptest.NewRecorder()
	tokens.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, JWKSPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", JWKSPath, rec.Code)
	}
	if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q, want a max-age", cc)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	var got []string
	for _, k := range doc.Keys {
		got = append(got, k["kid"].(string))
		if k["alg"] != "ES256" || k["use"] != "sig" || k["kty"] != "EC" || k["crv"] != "P-256" {
			t.Errorf("JWKS key %v: want alg ES256, use sig, kty EC, crv P-256", k)
		}
		if _, ok := k["d"]; ok {
			t.Errorf("JWKS key %v carries private key material", k["kid"])
		}
	}
	if !slices.Equal(got, kids) {
		t.Errorf("JWKS kids = %v, want %v", got, kids)
	}
}

func headerKID(t *testing.T, token string) string {
	t.Helper()
	var h struct {
		KID string `json:"kid"`
	}
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64URLDecode(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.KID
}

func onlyKeyFile(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err != nil || len(names) != 1 {
		t.Fatalf("want one key file in %s, got %v (%v)", dir, names, err)
	}
	return names[0]
}

func chmodAll(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(onlyKeyFile(t, dir), mode); err != nil {
		t.Fatal(err)
	}
}

func writeAll(t *testing.T, dir string, content []byte) {
	t.Helper()
	if err := os.WriteFile(onlyKeyFile(t, dir), content, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRotateWhileIssuingAndVerifying(t *testing.T) {
	f := newFixture(t)
	p := Principal{Subject: "pt_1", Role: store.RolePatient}
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				tok, _, err := f.tokens.IssueAccess(p)
				if err == nil {
					_, err = f.tokens.Verify(tok)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range 5 {
		if err := f.keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("issue/verify during rotation: %v", err)
		}
	}
	if n := len(f.keys.KeyIDs()); n != 6 {
		t.Errorf("after 5 rotations the set has %d keys, want 6", n)
	}
}

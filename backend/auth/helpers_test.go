package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mtmapp/mtm/backend/store"
)

const (
	testIssuer   = "https://mtm.example.test"
	testAudience = "mtm-api"
)

// testClock is a settable clock, safe for concurrent use.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 8, 9, 30, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a key set in a fresh directory and Tokens over it.
type fixture struct {
	dir    string
	clock  *testClock
	keys   *KeySet
	tokens *Tokens
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{dir: tb.TempDir(), clock: newTestClock()}
	var err error
	if f.keys, err = LoadOrCreateKeySet(f.dir, f.clock.Now); err != nil {
		tb.Fatalf("LoadOrCreateKeySet: %v", err)
	}
	f.tokens = f.newTokens(tb, testIssuer, testAudience)
	return f
}

// newTokens returns Tokens over the fixture's keys and clock with another
// issuer or audience.
func (f *fixture) newTokens(tb testing.TB, issuer, audience string) *Tokens {
	tb.Helper()
	t, err := NewTokens(f.keys, TokenConfig{Issuer: issuer, Audience: audience, AccessTTL: 15 * time.Minute, Now: f.clock.Now})
	if err != nil {
		tb.Fatalf("NewTokens: %v", err)
	}
	return t
}

func (f *fixture) issue(tb testing.TB, p Principal) string {
	tb.Helper()
	tok, _, err := f.tokens.IssueAccess(p)
	if err != nil {
		tb.Fatalf("IssueAccess(%+v): %v", p, err)
	}
	return tok
}

// signingKey returns the fixture's current private signing key and kid.
func (f *fixture) signingKey() (*ecdsa.PrivateKey, string) {
	k := f.keys.ring.Load().signing()
	return k.private, k.kid
}

// validClaims are the claims IssueAccess would put in a token at now.
func validClaims(now time.Time) accessClaims {
	return accessClaims{
		Claims: jwt.Claims{
			Issuer:    testIssuer,
			Subject:   "pt_abc",
			Audience:  jwt.Audience{testAudience},
			Expiry:    jwt.NewNumericDate(now.Add(15 * time.Minute)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "jti-1",
		},
		Role:      store.RolePatient,
		SessionID: "fam_1",
	}
}

// signES256 signs claims with key, putting kid (if not empty), typ (if not
// empty) and the extra headers into the protected header.
func signES256(tb testing.TB, key *ecdsa.PrivateKey, kid, typ string, extra map[jose.HeaderKey]any, claims any) string {
	tb.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	sk := jose.SigningKey{Algorithm: jose.ES256, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		tb.Fatalf("NewSigner: %v", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		tb.Fatalf("Serialize: %v", err)
	}
	return tok
}

func newECKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func base64URLDecode(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mtmapp/mtm/backend/store"
)

// A token verified once (and so cached) stops working when its key is
// retired, by this instance or by another one sharing the keys.
func TestCachedTokenStopsWithItsKey(t *testing.T) {
	for _, who := range []string{"this instance", "another instance"} {
		t.Run(who, func(t *testing.T) {
			f := newFixture(t)
			p := Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"}
			oldKID := f.keys.KeyIDs()[0]
			tok := f.issue(t, p)
			for range 2 {
				if got, err := f.tokens.Verify(tok); err != nil || got != p {
					t.Fatalf("Verify = (%+v, %v), want %+v", got, err, p)
				}
			}
			if n := f.tokens.verified.len(); n != 1 {
				t.Fatalf("%d cached tokens after verifying one, want 1", n)
			}
			if err := f.keys.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, err := f.tokens.Verify(tok); err != nil || got != p {
				t.Fatalf("after Rotate, the old key's token: (%+v, %v), want it still valid", got, err)
			}
			switch who {
			case "this instance":
				if err := f.keys.Retire(t.Context(), oldKID); err != nil {
					t.Fatal(err)
				}
			case "another instance":
				other, err := LoadOrCreateKeySet(f.dir, f.clock.Now)
				if err != nil {
					t.Fatal(err)
				}
				if err := other.Retire(t.Context(), oldKID); err != nil {
					t.Fatal(err)
				}
				if got, err := f.tokens.Verify(tok); err != nil || got != p {
					t.Fatalf("before this instance reloads: (%+v, %v), want still valid (as without a cache)", got, err)
				}
				if err := f.keys.Reload(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := f.tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) || got != (Principal{}) {
				t.Fatalf("cached token of a retired key: (%+v, %v), want ErrInvalidToken", got, err)
			}
		})
	}
}

// A cached token is refused from its expiry (plus the clock leeway) on,
// exactly as an uncached one.
func TestCachedTokenExpires(t *testing.T) {
	f := newFixture(t)
	p := Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"}
	tok, exp, err := f.tokens.IssueAccess(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.tokens.Verify(tok); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(exp.Sub(f.clock.Now()) + ClockLeeway - time.Second)
	if got, err := f.tokens.Verify(tok); err != nil || got != p {
		t.Fatalf("a second before expiry plus leeway: (%+v, %v), want valid", got, err)
	}
	f.clock.Add(2 * time.Second)
	if _, err := f.tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after expiry: %v, want ErrInvalidToken", err)
	}
	if n := f.tokens.verified.len(); n != 0 {
		t.Errorf("%d cached tokens after the only one expired, want 0", n)
	}
	// Another verifier with other expectations does not trust this one's cache.
	other := f.newTokens(t, testIssuer, "another-api")
	fresh := f.issue(t, p)
	if _, err := other.Verify(fresh); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token for another audience: %v, want ErrInvalidToken", err)
	}
}

// The cache never holds more than its bound, and drops expired entries
// first when full.
func TestClaimCacheIsBounded(t *testing.T) {
	now := time.Date(2026, 3, 8, 9, 0, 0, 0, time.UTC)
	c := newClaimCache(64)
	claims := func(exp time.Time) accessClaims {
		return accessClaims{Claims: jwt.Claims{Expiry: jwt.NewNumericDate(exp)}}
	}
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte(fmt.Sprint(i))) }
	for i := range 32 {
		c.put(key(i), claims(now.Add(-time.Hour)), "k", now) // already expired
	}
	for i := 32; i < 1000; i++ {
		c.put(key(i), claims(now.Add(time.Hour)), "k", now)
		if n := c.len(); n > 64 {
			t.Fatalf("%d entries after %d puts, bound 64", n, i+1)
		}
	}
	live := func(string) bool { return true }
	if _, ok := c.get(key(999), live); !ok {
		t.Error("the newest entry is missing")
	}
	for i := range 32 {
		if _, ok := c.get(key(i), live); ok {
			t.Fatalf("expired entry %d kept while the cache was full", i)
		}
	}
}

// TokenConfig.VerifiedCache sizes the cache of verified tokens (mtmd
// --token-cache): a large plan can hold every live token, a small instance
// fewer; a negative size is refused.
func TestVerifiedCacheIsConfigured(t *testing.T) {
	f := newFixture(t)
	small, err := NewTokens(f.keys, TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, Now: f.clock.Now, VerifiedCache: 8})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		p := Principal{Subject: fmt.Sprintf("pt_%d", i), Role: store.RolePatient, SessionID: "fam_1"}
		tok, _, err := small.IssueAccess(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := small.Verify(tok); err != nil || got != p {
			t.Fatalf("Verify = (%+v, %v), want %+v", got, err, p)
		}
		if n := small.verified.len(); n > 8 {
			t.Fatalf("%d cached tokens with VerifiedCache 8", n)
		}
	}
	if f.tokens.verified.max != DefaultVerifiedCache {
		t.Errorf("unset VerifiedCache holds %d, want DefaultVerifiedCache (%d)", f.tokens.verified.max, DefaultVerifiedCache)
	}
	if _, err := NewTokens(f.keys, TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, Now: f.clock.Now, VerifiedCache: -1}); err == nil {
		t.Error("NewTokens accepted a negative VerifiedCache")
	}
}

package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultVerifiedCache bounds the verified tokens kept when
// TokenConfig.VerifiedCache is not set: at about 300 bytes an entry, 64Ki
// entries is about 20 MB. An instance whose callers hold more access tokens
// than that at once verifies the rest on every call.
const DefaultVerifiedCache = 1 << 16

// claimCache keeps the decoded claims of access tokens whose signature
// has been verified, keyed by the SHA-256 of the token, so that the ES256
// verification (the largest cost of an authenticated call) runs once per
// token rather than once per call. Access tokens are stateless: nothing
// but time and the key that signed them can make a verified token invalid,
// so Verify re-checks the claims' times on every call and trusts an entry
// only while the key it was verified with (kid) is still in the key set.
// Only tokens that verified are cached: what a caller can make it hold is
// bounded by the tokens the server issued.
type claimCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]cachedClaims
}

type cachedClaims struct {
	claims accessClaims
	kid    string
	// until is when the entry can no longer pass validation (exp plus the
	// clock leeway); expired entries are swept when the cache is full.
	until time.Time
}

func newClaimCache(max int) *claimCache {
	return &claimCache{max: max, entries: map[[sha256.Size]byte]cachedClaims{}}
}

// get returns the entry for key if there is one whose key is still live
// (live reports whether a kid is in the current key set); an entry whose
// key was retired is dropped.
func (c *claimCache) get(key [sha256.Size]byte, live func(kid string) bool) (accessClaims, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if !ok {
		return accessClaims{}, false
	}
	if !live(e.kid) {
		c.drop(key)
		return accessClaims{}, false
	}
	return e.claims, true
}

func (c *claimCache) put(key [sha256.Size]byte, claims accessClaims, kid string, now time.Time) {
	if claims.Expiry == nil {
		return
	}
	until := claims.Expiry.Time().Add(ClockLeeway)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		// Still full of live tokens: forget an arbitrary eighth (map order
		// is random); they verify again on their next call.
		for k := range c.entries {
			if len(c.entries) < c.max-c.max/8 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cachedClaims{claims: claims, kid: kid, until: until}
}

func (c *claimCache) drop(key [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.entries, key)
	c.mu.Unlock()
}

func (c *claimCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

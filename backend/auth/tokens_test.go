package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mtmapp/mtm/backend/store"
)

// attack is a token Verify must refuse.
type attack struct {
	name  string
	token string
}

// attackCorpus builds tokens that a forger, a confused client or a broken
// peer could present, against the fixture's keys at the fixture's now.
func attackCorpus(tb testing.TB, f *fixture) []attack {
	tb.Helper()
	attacks, _ := attackCorpusAndControls(tb, f)
	return attacks
}

// attackCorpusAndControls returns the attack corpus and its controls: the
// unaltered tokens the attacks are made from (the issued token, and our
// key and kid over the same claims), which Verify must accept, so that each
// refusal is down to what the attack changed.
func attackCorpusAndControls(tb testing.TB, f *fixture) (attacks, controls []attack) {
	tb.Helper()
	now := f.clock.Now()
	ourKey, ourKID := f.signingKey()
	attacker := newECKey(tb)
	valid := f.issue(tb, Principal{Subject: "pt_abc", Role: store.RolePatient, SessionID: "fam_1"})
	b64 := base64.RawURLEncoding
	enc := func(v any) string {
		raw, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b64.EncodeToString(raw)
	}
	payload := enc(validClaims(now))
	modify := func(change func(*accessClaims)) accessClaims {
		c := validClaims(now)
		change(&c)
		return c
	}

	// HS256 keyed with our public key: the classic algorithm-confusion forgery.
	pubDER, err := x509.MarshalPKIXPublicKey(&ourKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(secret []byte) string {
		signing := enc(map[string]string{"alg": "HS256", "typ": "at+jwt", "kid": ourKID}) + "." + payload
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signing))
		return signing + "." + b64.EncodeToString(mac.Sum(nil))
	}

	// A key embedded in the header (jwk) with our kid beside it.
	embedded := func(key *ecdsa.PrivateKey) string {
		opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("at+jwt").WithHeader("kid", ourKID)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		if err != nil {
			tb.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(validClaims(now)).Serialize()
		if err != nil {
			tb.Fatal(err)
		}
		return tok
	}

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	es384Signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: p384, KeyID: ourKID}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		tb.Fatal(err)
	}
	es384, err := jwt.Signed(es384Signer).Claims(validClaims(now)).Serialize()
	if err != nil {
		tb.Fatal(err)
	}

	parts := strings.Split(valid, ".")
	refresh, err := NewRefreshToken()
	if err != nil {
		tb.Fatal(err)
	}
	sign := func(claims any) string { return signES256(tb, ourKey, ourKID, "at+jwt", nil, claims) }

	controls = []attack{
		{"the issued token", valid},
		{"our key and kid over the attacks' claims", sign(validClaims(now))},
		{"our key and kid over unchanged claims (modify base)", sign(modify(func(*accessClaims) {}))},
	}
	return []attack{
		{"alg none", enc(map[string]string{"alg": "none", "typ": "at+jwt", "kid": ourKID}) + "." + payload + "."},
		{"alg none without kid", enc(map[string]string{"alg": "none"}) + "." + payload + "."},
		{"HS256 keyed with public key PEM", hs256(pubPEM)},
		{"HS256 keyed with public key DER", hs256(pubDER)},
		{"ES384 under our kid", es384},
		{"unknown kid", signES256(tb, attacker, "attacker-kid", "at+jwt", nil, validClaims(now))},
		{"attacker key under our kid", signES256(tb, attacker, ourKID, "at+jwt", nil, validClaims(now))},
		{"no kid", signES256(tb, ourKey, "", "at+jwt", nil, validClaims(now))},
		{"embedded jwk (attacker key)", embedded(attacker)},
		{"embedded jwk (our own key)", embedded(ourKey)},
		{"jku header", signES256(tb, ourKey, ourKID, "at+jwt", map[jose.HeaderKey]any{"jku": "https://evil.example/jwks.json"}, validClaims(now))},
		{"x5u header", signES256(tb, ourKey, ourKID, "at+jwt", map[jose.HeaderKey]any{"x5u": "https://evil.example/cert.pem"}, validClaims(now))},
		{"x5c header", signES256(tb, ourKey, ourKID, "at+jwt", map[jose.HeaderKey]any{"x5c": []string{b64.EncodeToString(pubDER)}}, validClaims(now))},
		{"crit header", signES256(tb, ourKey, ourKID, "at+jwt", map[jose.HeaderKey]any{"crit": []string{"exp"}}, validClaims(now))},
		{"expired", sign(modify(func(c *accessClaims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-20 * time.Minute))
			c.NotBefore = c.IssuedAt
			c.Expiry = jwt.NewNumericDate(now.Add(-time.Minute))
		}))},
		{"not yet valid", sign(modify(func(c *accessClaims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(5 * time.Minute))
			c.Expiry = jwt.NewNumericDate(now.Add(20 * time.Minute))
		}))},
		{"issued in the future", sign(modify(func(c *accessClaims) { c.IssuedAt = jwt.NewNumericDate(now.Add(5 * time.Minute)) }))},
		{"wrong issuer", sign(modify(func(c *accessClaims) { c.Issuer = "https://evil.example" }))},
		{"missing issuer", sign(modify(func(c *accessClaims) { c.Issuer = "" }))},
		{"wrong audience", sign(modify(func(c *accessClaims) { c.Audience = jwt.Audience{"another-api"} }))},
		{"missing audience", sign(modify(func(c *accessClaims) { c.Audience = nil }))},
		{"missing exp", sign(modify(func(c *accessClaims) { c.Expiry = nil }))},
		{"missing subject", sign(modify(func(c *accessClaims) { c.Subject = "" }))},
		{"unknown role", sign(modify(func(c *accessClaims) { c.Role = "root" }))},
		{"pharmacist without pharmacy", sign(modify(func(c *accessClaims) { c.Role = store.RolePharmacist }))},
		{"typ JWT", signES256(tb, ourKey, ourKID, "JWT", nil, validClaims(now))},
		{"no typ", signES256(tb, ourKey, ourKID, "", nil, validClaims(now))},
		{"refresh token string", refresh},
		{"payload swapped (role escalation)", parts[0] + "." +
			enc(modify(func(c *accessClaims) { c.Role = store.RolePharmacyAdmin; c.PharmacyID = "ph_1" })) + "." + parts[2]},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4]},
		{"JWS JSON serialization", `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`},
		{"valid token with trailing junk", valid + ".x"},
		{"valid token padded over 8 KiB", valid + strings.Repeat("A", MaxTokenBytes)},
		{"1 MB of dots", strings.Repeat(".", 1<<20)},
		{"empty", ""},
		{"three dots", "..."},
		{"garbage", "not a token at all"},
		{"garbage segments", "a.b.c"},
		{"binary", "\x00\xff\xfe.\x00.\x01"},
		{"bearer prefix left on", "Bearer " + valid},
	}, controls
}

func TestVerifyRefusesAttackCorpus(t *testing.T) {
	f := newFixture(t)
	attacks, controls := attackCorpusAndControls(t, f)
	for _, tc := range controls {
		t.Run("control: "+tc.name, func(t *testing.T) {
			p, err := f.tokens.Verify(tc.token)
			if err != nil || p.Subject != "pt_abc" || p.Role != store.RolePatient || p.SessionID != "fam_1" {
				t.Fatalf("Verify = (%+v, %v), want pt_abc as a patient in fam_1: the attacks' refusals prove nothing", p, err)
			}
		})
	}
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.tokens.Verify(tc.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = (%+v, %v), want ErrInvalidToken", p, err)
			}
			if p != (Principal{}) {
				t.Errorf("refused token still yielded principal %+v", p)
			}
			if len(tc.token) > 16 && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error message contains the token")
			}
		})
	}
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	f := newFixture(t)
	tests := []Principal{
		{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_a"},
		{Subject: "ac_2", Role: store.RoleCaregiver, SessionID: "fam_b"},
		{Subject: "ac_3", Role: store.RolePharmacist, PharmacyID: "ph_1", SessionID: "fam_c"},
		{Subject: "ac_4", Role: store.RolePharmacyAdmin, PharmacyID: "ph_2"},
	}
	for _, want := range tests {
		t.Run(string(want.Role), func(t *testing.T) {
			tok, exp, err := f.tokens.IssueAccess(want)
			if err != nil {
				t.Fatalf("IssueAccess: %v", err)
			}
			if wantExp := f.clock.Now().Add(15 * time.Minute); !exp.Equal(wantExp) {
				t.Errorf("expiresAt = %v, want %v", exp, wantExp)
			}
			got, err := f.tokens.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got != want {
				t.Errorf("Verify = %+v, want %+v", got, want)
			}
		})
	}
}

func TestAccessTokenShape(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, Principal{Subject: "ac_3", Role: store.RolePharmacist, PharmacyID: "ph_1", SessionID: "fam_c"})
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments, want 3", len(parts))
	}
	decode := func(seg string) map[string]any {
		t.Helper()
		raw, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	_, kid := f.signingKey()
	header := decode(parts[0])
	if header["alg"] != "ES256" || header["typ"] != "at+jwt" || header["kid"] != kid || len(header) != 3 {
		t.Errorf("header = %v, want exactly alg ES256, typ at+jwt, kid %s", header, kid)
	}
	claims := decode(parts[1])
	for _, name := range []string{"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "role", "pharmacy_id", "sid"} {
		if _, ok := claims[name]; !ok {
			t.Errorf("claim %q missing from %v", name, claims)
		}
	}
	if other := f.issue(t, Principal{Subject: "ac_3", Role: store.RolePharmacist, PharmacyID: "ph_1", SessionID: "fam_c"}); other == tok {
		t.Error("two tokens issued at the same instant are identical (jti not random)")
	}
}

func TestVerifyClockLeeway(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		ok      bool
	}{
		{"fresh", 0, true},
		{"just before expiry", 15*time.Minute - time.Second, true},
		{"expired within leeway", 15*time.Minute + 20*time.Second, true},
		{"expired beyond leeway", 15*time.Minute + 31*time.Second, false},
		{"verifier clock behind within leeway", -20 * time.Second, true},
		{"verifier clock behind beyond leeway", -time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.issue(t, Principal{Subject: "pt_1", Role: store.RolePatient})
			f.clock.Add(tc.advance)
			_, err := f.tokens.Verify(tok)
			if tc.ok && err != nil {
				t.Errorf("Verify after %v: %v, want accepted", tc.advance, err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify after %v: %v, want ErrInvalidToken", tc.advance, err)
			}
		})
	}
}

func TestVerifyRefusesOtherIssuerOrAudience(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ name, issuer, audience string }{
		{"other issuer", "https://staging.mtm.example.test", testAudience},
		{"other audience", testIssuer, "mtm-admin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			other := f.newTokens(t, tc.issuer, tc.audience)
			tok, _, err := other.IssueAccess(Principal{Subject: "pt_1", Role: store.RolePatient})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) {
				t.Errorf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestIssueAccessRefusesBadPrincipal(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name string
		p    Principal
	}{
		{"no subject", Principal{Role: store.RolePatient}},
		{"no role", Principal{Subject: "pt_1"}},
		{"unknown role", Principal{Subject: "pt_1", Role: "admin"}},
		{"pharmacist without pharmacy", Principal{Subject: "ac_1", Role: store.RolePharmacist}},
		{"patient with pharmacy", Principal{Subject: "pt_1", Role: store.RolePatient, PharmacyID: "ph_1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tok, _, err := f.tokens.IssueAccess(tc.p); err == nil {
				t.Errorf("IssueAccess(%+v) = %q, want an error", tc.p, tok)
			}
		})
	}
}

func TestNewTokensRefusesBadConfig(t *testing.T) {
	f := newFixture(t)
	good := TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, Now: f.clock.Now}
	tests := []struct {
		name   string
		keys   *KeySet
		change func(*TokenConfig)
	}{
		{"nil keys", nil, func(*TokenConfig) {}},
		{"empty issuer", f.keys, func(c *TokenConfig) { c.Issuer = "" }},
		{"empty audience", f.keys, func(c *TokenConfig) { c.Audience = "" }},
		{"zero TTL", f.keys, func(c *TokenConfig) { c.AccessTTL = 0 }},
		{"negative TTL", f.keys, func(c *TokenConfig) { c.AccessTTL = -time.Minute }},
		{"TTL over a day", f.keys, func(c *TokenConfig) { c.AccessTTL = 25 * time.Hour }},
		{"nil clock", f.keys, func(c *TokenConfig) { c.Now = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			if _, err := NewTokens(tc.keys, cfg); err == nil {
				t.Error("NewTokens accepted the config")
			}
		})
	}
	if _, err := NewTokens(f.keys, good); err != nil {
		t.Errorf("NewTokens(good config): %v", err)
	}
}

package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mtmapp/mtm/backend/store"
)

// ErrInvalidToken means an access token was refused: malformed, too large,
// of the wrong type, signed by an unknown key or with a wrong algorithm,
// expired, not yet valid, or for another issuer or audience. Verify wraps it
// for every failure; the wrapped detail is for server logs, never for the
// caller.
var ErrInvalidToken = errors.New("auth: invalid token")

const (
	// MaxTokenBytes is the size above which a token is refused unparsed.
	MaxTokenBytes = 8 << 10
	// ClockLeeway is the clock skew tolerated on exp, nbf and iat.
	ClockLeeway = 30 * time.Second
	// MaxAccessTTL bounds TokenConfig.AccessTTL: an access token cannot be
	// revoked before it expires.
	MaxAccessTTL = 24 * time.Hour

	accessTokenType = "at+jwt"
)

// TokenConfig configures access tokens.
type TokenConfig struct {
	Issuer    string           // "iss" of issued tokens; the only issuer accepted
	Audience  string           // "aud" of issued tokens; must be among a token's audiences
	AccessTTL time.Duration    // lifetime of an access token, e.g. 15 minutes
	Now       func() time.Time // the clock for issuing and validating
	// VerifiedCache is how many verified access tokens keep their claims
	// in memory, so that their signature is checked once rather than on
	// every call (about 300 bytes each); 0 means DefaultVerifiedCache.
	VerifiedCache int
}

// Tokens issues and verifies access tokens: ES256 JWTs with header typ
// "at+jwt" and the kid of the KeySet key that signed them, carrying the
// claims iss, aud, sub, exp, iat, nbf, jti and the private claims role,
// pharmacy_id and sid. It is safe for concurrent use.
type Tokens struct {
	keys *KeySet
	cfg  TokenConfig
	// verified holds the claims of tokens whose signature verified.
	verified *claimCache
}

// accessClaims is the payload of an access token.
type accessClaims struct {
	jwt.Claims
	Role       store.Role `json:"role"`
	PharmacyID string     `json:"pharmacy_id"`
	SessionID  string     `json:"sid"`
}

// NewTokens returns Tokens signing with keys. It refuses an empty issuer or
// audience, a non-positive AccessTTL or one above MaxAccessTTL, nil keys and
// a nil clock.
func NewTokens(keys *KeySet, cfg TokenConfig) (*Tokens, error) {
	var problems []string
	if keys == nil {
		problems = append(problems, "nil key set")
	}
	if cfg.Issuer == "" {
		problems = append(problems, "empty issuer")
	}
	if cfg.Audience == "" {
		problems = append(problems, "empty audience")
	}
	if cfg.AccessTTL <= 0 || cfg.AccessTTL > MaxAccessTTL {
		problems = append(problems, fmt.Sprintf("access TTL %v outside (0, %v]", cfg.AccessTTL, MaxAccessTTL))
	}
	if cfg.Now == nil {
		problems = append(problems, "nil clock")
	}
	if cfg.VerifiedCache < 0 {
		problems = append(problems, fmt.Sprintf("verified-token cache %d is negative", cfg.VerifiedCache))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("auth.NewTokens: %s", strings.Join(problems, "; "))
	}
	if cfg.VerifiedCache == 0 {
		cfg.VerifiedCache = DefaultVerifiedCache
	}
	return &Tokens{keys: keys, cfg: cfg, verified: newClaimCache(cfg.VerifiedCache)}, nil
}

// IssueAccess signs an access token for p with the newest key. expiresAt is
// the token's exp (whole seconds). It refuses a principal without subject,
// with an unknown role, or whose pharmacy does not match its role (staff
// have one, others none).
func (t *Tokens) IssueAccess(p Principal) (token string, expiresAt time.Time, err error) {
	if err := p.validate(); err != nil {
		return "", time.Time{}, fmt.Errorf("auth.IssueAccess: %w", err)
	}
	ring := t.keys.ring.Load()
	key := ring.signing()
	jti, err := randomString(16)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth.IssueAccess: %w", err)
	}
	now := t.cfg.Now().Truncate(time.Second)
	expiresAt = now.Add(t.cfg.AccessTTL).Truncate(time.Second)
	claims := accessClaims{
		Claims: jwt.Claims{
			Issuer:    t.cfg.Issuer,
			Subject:   p.Subject,
			Audience:  jwt.Audience{t.cfg.Audience},
			Expiry:    jwt.NewNumericDate(expiresAt),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		Role:       p.Role,
		PharmacyID: p.PharmacyID,
		SessionID:  p.SessionID,
	}
	token, err = sign(ring.signer, claims)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth.IssueAccess: %w", err)
	}
	// This instance signed the claims: their first call here needs no
	// signature check either (a sign-in or refresh is followed by calls).
	if len(token) <= MaxTokenBytes {
		t.verified.put(sha256.Sum256([]byte(token)), claims, key.kid, now)
	}
	return token, expiresAt, nil
}

// sign returns claims signed by signer as a compact JWS. The claims are
// encoded once, with encoding/json: go-jose's jwt builder would encode
// them, decode them into a map and encode that map again, which cost
// more than the ECDSA signature itself (the app-open profile, issue 16).
// The token is the same JWT; only the order of its claims differs.
func sign(signer jose.Signer, claims accessClaims) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Verify checks an access token and returns the principal it names. Every
// failure wraps ErrInvalidToken. Tokens over MaxTokenBytes are refused
// before parsing; only ES256 is accepted; the key is looked up by kid
// among the KeySet's keys only (a token that carries its own key, or
// points at one, is refused); exp, iss and aud are required; exp, nbf and
// iat are checked against the configured clock with ClockLeeway.
func (t *Tokens) Verify(token string) (Principal, error) {
	p, _, err := t.VerifyUntil(token)
	return p, err
}

// VerifyUntil is Verify that also returns when the token expires (its exp
// claim): a stream the token opened ends then (see AccessExpiryFrom).
func (t *Tokens) VerifyUntil(token string) (Principal, time.Time, error) {
	p, exp, err := t.verify(token)
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("auth.Verify: %w: %v", ErrInvalidToken, err)
	}
	return p, exp, nil
}

// verify checks the token's signature once (then its claims come from the
// cache while its key is live) and its claims' values on every call.
func (t *Tokens) verify(token string) (Principal, time.Time, error) {
	var c accessClaims
	cacheable := token != "" && len(token) <= MaxTokenBytes
	var key [sha256.Size]byte
	cached := false
	if cacheable {
		key = sha256.Sum256([]byte(token))
		c, cached = t.verified.get(key, t.keys.live)
	}
	if !cached {
		kid, err := t.parse(token, isAccessTokenType, &c)
		if err != nil {
			return Principal{}, time.Time{}, err
		}
		p, err := t.checkClaims(c)
		if err != nil {
			return Principal{}, time.Time{}, err
		}
		if cacheable {
			t.verified.put(key, c, kid, t.cfg.Now())
		}
		return p, c.Expiry.Time(), nil
	}
	p, err := t.checkClaims(c)
	if err != nil {
		t.verified.drop(key)
		return Principal{}, time.Time{}, err
	}
	return p, c.Expiry.Time(), nil
}

// checkClaims validates the values of verified claims at the current time.
func (t *Tokens) checkClaims(c accessClaims) (Principal, error) {
	err := c.Claims.ValidateWithLeeway(jwt.Expected{
		Issuer:      t.cfg.Issuer,
		AnyAudience: jwt.Audience{t.cfg.Audience},
		Time:        t.cfg.Now(),
	}, ClockLeeway)
	if err != nil {
		return Principal{}, err
	}
	// A token signed by our own key but living longer than we issue them
	// (a leaked key, a bug, an old build) is refused.
	maxLife := t.cfg.AccessTTL + ClockLeeway
	exp := c.Expiry.Time()
	if exp.Sub(t.cfg.Now()) > maxLife {
		return Principal{}, fmt.Errorf("exp %v beyond the access-token lifetime %v", exp, t.cfg.AccessTTL)
	}
	if c.IssuedAt != nil && exp.Sub(c.IssuedAt.Time()) > maxLife {
		return Principal{}, fmt.Errorf("exp - iat exceeds the access-token lifetime %v", t.cfg.AccessTTL)
	}
	p := Principal{Subject: c.Subject, Role: c.Role, PharmacyID: c.PharmacyID, SessionID: c.SessionID}
	if err := p.validate(); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// parse checks a compact JWS of an accepted type against our keys and
// decodes its claims into claims, which must embed jwt.Claims; exp, iss
// and aud must be present. The caller validates the claims' values.
func (t *Tokens) parse(token string, typeOK func(string) bool, claims interface{ base() *jwt.Claims }) (kid string, err error) {
	if token == "" {
		return "", errors.New("empty token")
	}
	if len(token) > MaxTokenBytes {
		return "", fmt.Errorf("token of %d bytes exceeds %d", len(token), MaxTokenBytes)
	}
	if err := checkProtectedHeader(token); err != nil {
		return "", err
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", err
	}
	if len(parsed.Headers) != 1 {
		return "", errors.New("not exactly one signature")
	}
	h := parsed.Headers[0]
	if h.Algorithm != string(jose.ES256) || h.JSONWebKey != nil {
		return "", errors.New("header refused")
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !typeOK(typ) {
		return "", errors.New("wrong token type (typ)")
	}
	pub, ok := t.keys.verifier(h.KeyID)
	if !ok {
		return "", errors.New("unknown kid")
	}
	if err := parsed.Claims(pub, claims); err != nil {
		return "", err
	}
	c := claims.base()
	if c.Expiry == nil {
		return "", errors.New("missing exp")
	}
	if c.Issuer == "" || len(c.Audience) == 0 {
		return "", errors.New("missing iss or aud")
	}
	return h.KeyID, nil
}

func (c *accessClaims) base() *jwt.Claims { return &c.Claims }

// checkProtectedHeader decodes the first segment of a compact JWS and
// refuses any header parameter other than alg, kid and typ, notably jwk,
// jku, x5c, x5u and crit: keys come from our KeySet, never from the token.
func checkProtectedHeader(token string) error {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return errors.New("not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return errors.New("header is not base64url")
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(raw, &params); err != nil {
		return errors.New("header is not a JSON object")
	}
	for name := range params {
		switch name {
		case "alg", "kid", "typ":
		default:
			return fmt.Errorf("header parameter %q refused", name)
		}
	}
	return nil
}

// isAccessTokenType reports whether typ names an RFC 9068 access token.
func isAccessTokenType(typ string) bool {
	return strings.EqualFold(typ, accessTokenType) || strings.EqualFold(typ, "application/"+accessTokenType)
}

// randomString returns n bytes from crypto/rand, base64url without padding.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

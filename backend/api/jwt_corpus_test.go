package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestJWTAttackCorpusOverTheAPI sends forged and malformed access tokens
// to a protected RPC over both protocols: every one is unauthenticated.
// (backend/auth holds the full corpus against the verifier itself.)
func TestJWTAttackCorpusOverTheAPI(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		now := e.clock.Now()
		claims := func(mut func(c map[string]any)) map[string]any {
			c := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": pt.id, "role": "patient", "sid": "sf_x",
				"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "j1"}
			if mut != nil {
				mut(c)
			}
			return c
		}
		foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sign := func(key any, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, c map[string]any) string {
			t.Helper()
			opts := (&jose.SignerOptions{}).WithType("at+jwt")
			for k, v := range hdr {
				opts = opts.WithHeader(k, v)
			}
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Signed(s).Claims(c).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		b64 := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		// A genuine token, to borrow its kid and prove the corpus is not
		// refused for some unrelated reason.
		kid := jwtHeader(t, pt.token)["kid"].(string)
		jwkHeader := jose.JSONWebKey{Key: &foreign.PublicKey, KeyID: kid, Algorithm: "ES256"}
		jwksJSON := e.jwks()

		corpus := map[string]string{
			"alg none":                   b64(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + b64(claims(nil)) + ".",
			"HS256 keyed with the JWKS":  sign(jwksJSON, jose.HS256, map[jose.HeaderKey]any{"kid": kid}, claims(nil)),
			"unknown kid":                sign(foreign, jose.ES256, map[jose.HeaderKey]any{"kid": "not-a-key"}, claims(nil)),
			"our kid, foreign key":       sign(foreign, jose.ES256, map[jose.HeaderKey]any{"kid": kid}, claims(nil)),
			"key embedded in the header": sign(foreign, jose.ES256, map[jose.HeaderKey]any{"kid": kid, "jwk": jwkHeader}, claims(nil)),
			"expired":                    e.forge(claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })),
			"not yet valid":              e.forge(claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })),
			"wrong issuer":               e.forge(claims(func(c map[string]any) { c["iss"] = "https://evil.test" })),
			"wrong audience":             e.forge(claims(func(c map[string]any) { c["aud"] = "other-api" })),
			"missing exp":                e.forge(claims(func(c map[string]any) { delete(c, "exp") })),
			"exp ten years out":          e.forge(claims(func(c map[string]any) { c["exp"] = now.Add(10 * 365 * 24 * time.Hour).Unix() })),
			"lifetime of an hour":        e.forge(claims(func(c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() })),
			"old iat, exp soon": e.forge(claims(func(c map[string]any) {
				c["iat"] = now.Add(-2 * time.Hour).Unix()
				c["exp"] = now.Add(5 * time.Minute).Unix()
			})),
			"refresh token as access":    pt.refresh,
			"64 KiB of dots":             strings.Repeat(".", 64<<10),
			"signature of another token": swapSignature(pt.token, sign(foreign, jose.ES256, map[jose.HeaderKey]any{"kid": kid}, claims(nil))),
		}
		call := func(tok string) error {
			_, err := e.patientClient(tok).GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: pt.id}))
			return err
		}
		if err := call(pt.token); err != nil {
			t.Fatalf("the genuine token is refused: %v", err)
		}
		if err := call(e.forge(claims(nil))); err != nil {
			t.Fatalf("a token forged with the server's own key (control) is refused: %v", err)
		}
		for name, tok := range corpus {
			t.Run(name, func(t *testing.T) {
				start := time.Now()
				wantCode(t, call(tok), connect.CodeUnauthenticated)
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("refusal took %v", d)
				}
			})
		}
	})
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func swapSignature(a, b string) string {
	i, j := strings.LastIndex(a, "."), strings.LastIndex(b, ".")
	return a[:i] + b[j:]
}

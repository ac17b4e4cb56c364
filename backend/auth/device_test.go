package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

func TestDeviceTokens(t *testing.T) {
	f := newFixture(t)
	tok, id, err := f.tokens.IssueDevice("ac_1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.tokens.VerifyDevice(tok, "ac_1"); err != nil || got != id {
		t.Fatalf("VerifyDevice = %q, %v; want %q", got, err, id)
	}
	access := f.issue(t, Principal{Subject: "ac_1", Role: "caregiver"})
	refused := []struct{ name, token, subject string }{
		{"another account", tok, "ac_2"},
		{"an access token", access, "ac_1"},
		{"garbage", "x.y.z", "ac_1"},
	}
	for _, c := range refused {
		if _, err := f.tokens.VerifyDevice(c.token, c.subject); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("VerifyDevice of %s: %v, want ErrInvalidToken", c.name, err)
		}
	}
	if _, err := f.tokens.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("a device token verified as an access token: %v", err)
	}
	f.clock.Add(DeviceTokenTTL + time.Hour)
	if _, err := f.tokens.VerifyDevice(tok, "ac_1"); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("VerifyDevice after its lifetime: %v, want ErrInvalidToken", err)
	}
}

// TestAccessTokenLifetimeBounded: a token signed by our own key whose
// lifetime exceeds the configured access TTL is refused; a control token
// that differs only in exp verifies.
func TestAccessTokenLifetimeBounded(t *testing.T) {
	f := newFixture(t)
	key, kid := f.signingKey()
	now := f.clock.Now()
	cases := []struct {
		name   string
		iat    time.Time
		exp    time.Time
		wantOK bool
	}{
		{"control: 15 min", now, now.Add(15 * time.Minute), true},
		{"at the limit with skew", now, now.Add(15*time.Minute + ClockLeeway), true},
		{"ten years", now, now.Add(10 * 365 * 24 * time.Hour), false},
		{"one hour", now, now.Add(time.Hour), false},
		{"old iat, exp within reach", now.Add(-2 * time.Hour), now.Add(10 * time.Minute), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := validClaims(now)
			cl.Claims.IssuedAt = jwt.NewNumericDate(c.iat)
			cl.Claims.NotBefore = jwt.NewNumericDate(c.iat)
			cl.Claims.Expiry = jwt.NewNumericDate(c.exp)
			_, err := f.tokens.Verify(signES256(t, key, kid, "at+jwt", nil, cl))
			if c.wantOK && err != nil {
				t.Fatalf("Verify: %v, want accepted", err)
			}
			if !c.wantOK && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify: %v, want ErrInvalidToken", err)
			}
		})
	}
}

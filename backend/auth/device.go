package auth

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DeviceTokenTTL is how long a device token marks its client as one that
// signed in before.
const DeviceTokenTTL = 180 * 24 * time.Hour

const deviceTokenType = "device+jwt"

// deviceClaims is the payload of a device token: sub the account, jti the
// device.
type deviceClaims struct {
	jwt.Claims
}

func (c *deviceClaims) base() *jwt.Claims { return &c.Claims }

// deviceAudience keeps device tokens apart from access tokens even where
// a verifier ignores typ.
func (t *Tokens) deviceAudience() string { return t.cfg.Audience + "#device" }

// IssueDevice signs a device token for subject (OWASP's "device cookie"): a
// client that presents it when it signs in to subject again is known to
// have signed in before, and gets a failure budget of its own. It grants
// no access by itself. deviceID identifies it in throttles and logs.
func (t *Tokens) IssueDevice(subject string) (token, deviceID string, err error) {
	if subject == "" {
		return "", "", fmt.Errorf("auth.IssueDevice: empty subject")
	}
	key := t.keys.ring.Load().signing()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.private, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType(deviceTokenType),
	)
	if err != nil {
		return "", "", fmt.Errorf("auth.IssueDevice: %w", err)
	}
	if deviceID, err = randomString(16); err != nil {
		return "", "", fmt.Errorf("auth.IssueDevice: %w", err)
	}
	now := t.cfg.Now().Truncate(time.Second)
	c := deviceClaims{jwt.Claims{
		Issuer:    t.cfg.Issuer,
		Subject:   subject,
		Audience:  jwt.Audience{t.deviceAudience()},
		Expiry:    jwt.NewNumericDate(now.Add(DeviceTokenTTL)),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ID:        deviceID,
	}}
	if token, err = jwt.Signed(signer).Claims(c).Serialize(); err != nil {
		return "", "", fmt.Errorf("auth.IssueDevice: %w", err)
	}
	return token, deviceID, nil
}

// VerifyDevice returns the device id of a device token that this server
// issued to subject and that has not expired; otherwise an error wrapping
// ErrInvalidToken (a device token of another account is refused).
func (t *Tokens) VerifyDevice(token, subject string) (string, error) {
	var c deviceClaims
	_, err := t.parse(token, func(typ string) bool { return strings.EqualFold(typ, deviceTokenType) }, &c)
	if err == nil {
		err = c.ValidateWithLeeway(jwt.Expected{
			Issuer:      t.cfg.Issuer,
			Subject:     subject,
			AnyAudience: jwt.Audience{t.deviceAudience()},
			Time:        t.cfg.Now(),
		}, ClockLeeway)
	}
	if err == nil && (c.ID == "" || c.Subject == "" || c.Expiry.Time().Sub(t.cfg.Now()) > DeviceTokenTTL+ClockLeeway) {
		err = fmt.Errorf("device token without id or with too long a life")
	}
	if err != nil {
		return "", fmt.Errorf("auth.VerifyDevice: %w: %v", ErrInvalidToken, err)
	}
	return c.ID, nil
}

package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP (RFC 6238) as authenticator apps implement it: HMAC-SHA1, 6 digits,
// 30-second steps, the secret as unpadded base32.
const (
	TOTPDigits = 6
	TOTPPeriod = 30 * time.Second
	// totpSkew is how many steps before and after now a code is accepted
	// (clocks of phones drift).
	totpSkew = 1
	// totpSecretBytes: 160 bits, the size RFC 4226 recommends.
	totpSecretBytes = 20
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrBadTOTPSecret means a secret is not the base32 of 16 to 64 bytes.
var ErrBadTOTPSecret = errors.New("auth: not a TOTP secret")

// NewTOTPSecret returns a fresh random secret as unpadded base32 (32
// characters), to show as text and in an otpauth:// URI.
func NewTOTPSecret() (string, error) {
	b := make([]byte, totpSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth.NewTOTPSecret: %w", err)
	}
	return b32.EncodeToString(b), nil
}

// decodeTOTPSecret accepts the secret as apps show it: any case, spaces
// ignored.
func decodeTOTPSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	key, err := b32.DecodeString(s)
	if err != nil || len(key) < 16 || len(key) > 64 {
		return nil, ErrBadTOTPSecret
	}
	return key, nil
}

// ValidTOTPSecret reports whether secret can be used.
func ValidTOTPSecret(secret string) bool {
	_, err := decodeTOTPSecret(secret)
	return err == nil
}

// TOTPStep is the time step that holds t.
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// totpCode is the code of key at step (RFC 4226 dynamic truncation).
func totpCode(key []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// TOTPCode returns the code of secret at t (what the authenticator app
// shows).
func TOTPCode(secret string, t time.Time) (string, error) {
	key, err := decodeTOTPSecret(secret)
	if err != nil {
		return "", err
	}
	return totpCode(key, TOTPStep(t)), nil
}

// VerifyTOTP checks code against secret at now, accepting the steps
// within totpSkew of now's but only those after lastStep (the step of
// the code last accepted for this secret): a code is good once. It
// returns the step the code matched; store it as the new lastStep.
func VerifyTOTP(secret, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	key, err := decodeTOTPSecret(secret)
	if err != nil || len(code) != TOTPDigits {
		return 0, false
	}
	cur := TOTPStep(now)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s <= lastStep {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(totpCode(key, s)), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// TOTPURI is the otpauth:// URI authenticator apps import (as a QR code
// or a link): issuer and account name label the entry.
func TOTPURI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}

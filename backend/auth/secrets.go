package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

const (
	refreshTokenBytes  = 32 // 256 bits
	activationCodeLen  = 12 // 60 bits
	activationGroupLen = 4
	idRandomLen        = 20 // 100 bits
	maxIDLen           = 64 // the API's limit on ids
)

// NewRefreshToken returns a fresh opaque refresh token: 256 bits from
// crypto/rand, base64url without padding (43 characters). Store only
// HashSecret of it.
func NewRefreshToken() (string, error) {
	tok, err := randomString(refreshTokenBytes)
	if err != nil {
		return "", fmt.Errorf("auth.NewRefreshToken: %w", err)
	}
	return tok, nil
}

// NewActivationCode returns a fresh one-time activation code of 12
// Crockford base32 characters (60 bits from crypto/rand), grouped for
// humans as "ABCD-EFGH-JKMN". Store HashActivationCode of it; whatever
// form the patient types it back in, HashActivationCode of that matches.
func NewActivationCode() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth.NewActivationCode: %w", err)
	}
	v := binary.BigEndian.Uint64(b[:])
	var out strings.Builder
	for i := range activationCodeLen {
		if i > 0 && i%activationGroupLen == 0 {
			out.WriteByte('-')
		}
		out.WriteByte(crockford[v&31])
		v >>= 5
	}
	return out.String(), nil
}

// NormalizeActivationCode returns the canonical form of a code as typed by
// a human: upper case, without spaces and dashes, with O read as 0 and I
// and L as 1. Other characters are kept, so a mistyped code stays wrong.
func NormalizeActivationCode(s string) string {
	var out strings.Builder
	out.Grow(len(s))
	for _, r := range strings.ToUpper(s) {
		switch r {
		case ' ', '-', '\t':
		case 'O':
			out.WriteByte('0')
		case 'I', 'L':
			out.WriteByte('1')
		default:
			out.WriteRune(r)
		}
	}
	return out.String()
}

// HashActivationCode is HashSecret of the normalized code: the key the store
// keeps an activation code under, for the code as issued or as typed.
func HashActivationCode(code string) string {
	return HashSecret(NormalizeActivationCode(code))
}

// HashSecret returns the SHA-256 of secret, hex encoded: the form in which
// the store keeps refresh tokens and activation and invite codes. The
// secrets are high-entropy random values, so a fast hash suffices.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// NewID returns prefix followed by 20 random lower-case Crockford base32
// characters (100 bits), e.g. "pt_5k2x...". The prefix may only hold
// ASCII letters, digits, '_' and '-', so ids match ^[A-Za-z0-9_-]+$ and fit
// the API's 64-character limit; another prefix is an error.
func NewID(prefix string) (string, error) {
	if len(prefix)+idRandomLen > maxIDLen {
		return "", errors.New("auth.NewID: prefix too long")
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "", fmt.Errorf("auth.NewID: prefix %q has characters outside [A-Za-z0-9_-]", prefix)
		}
	}
	b := make([]byte, idRandomLen)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth.NewID: %w", err)
	}
	const lower = "0123456789abcdefghjkmnpqrstvwxyz"
	for i := range b {
		b[i] = lower[b[i]&31]
	}
	return prefix + string(b), nil
}

package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing parameters: the OWASP baseline for argon2id (19 MiB,
// two passes, one lane). A check costs about as much as a hash; bound
// concurrent logins (rate limits) with memory × concurrency in mind.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32

	// MaxPasswordBytes is the longest password HashPassword accepts.
	MaxPasswordBytes = 1024
)

// Bounds on the parameters CheckPassword accepts from a stored hash, so a
// corrupted or planted hash cannot make a check arbitrarily expensive.
const (
	maxArgonMemoryKiB = 256 * 1024
	maxArgonTime      = 16
	maxArgonThreads   = 16
)

// ErrMalformedHash means a stored password hash is not an argon2id PHC
// string this package can check.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// argonParams is one decoded PHC string.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// HashPassword returns the argon2id hash of password as a PHC string
// "$argon2id$v=19$m=...,t=...,p=...$salt$hash" (unpadded standard base64)
// with a fresh random salt. It refuses an empty password and one longer
// than MaxPasswordBytes.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("auth.HashPassword: empty password")
	}
	if len(password) > MaxPasswordBytes {
		return "", fmt.Errorf("auth.HashPassword: password longer than %d bytes", MaxPasswordBytes)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth.HashPassword: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC string encoded,
// comparing in constant time with the parameters stored in encoded. The
// error (wrapping ErrMalformedHash) is only for an encoded value it cannot
// read; a wrong password is (false, nil).
func CheckPassword(encoded, password string) (bool, error) {
	p, err := decodeArgon2id(encoded)
	if err != nil {
		return false, fmt.Errorf("auth.CheckPassword: %w", err)
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// DummyPasswordCheck spends what CheckPassword spends on a hash made by
// HashPassword, and discards the result. Call it when the account does not
// exist so that response time does not tell which e-mails have accounts.
func DummyPasswordCheck(password string) {
	// The same path as a real check: parse a hash with the current
	// parameters, derive, compare. No password matches the all-zero key.
	zeroSalt := make([]byte, argonSaltLen)
	zeroKey := make([]byte, argonKeyLen)
	b64 := base64.RawStdEncoding
	dummy := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		b64.EncodeToString(zeroSalt), b64.EncodeToString(zeroKey))
	_, _ = CheckPassword(dummy, password)
}

// PasswordNeedsRehash reports whether encoded was made with other (older)
// parameters than HashPassword uses now, so the caller can store a fresh
// hash after a successful login. A malformed hash needs one too.
func PasswordNeedsRehash(encoded string) bool {
	p, err := decodeArgon2id(encoded)
	if err != nil {
		return true
	}
	return p.memory != argonMemoryKiB || p.time != argonTime || p.threads != argonThreads ||
		len(p.salt) != argonSaltLen || len(p.key) != argonKeyLen
}

func decodeArgon2id(encoded string) (argonParams, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return argonParams{}, ErrMalformedHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return argonParams{}, ErrMalformedHash
	}
	var p argonParams
	var threads uint32
	n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads)
	if err != nil || n != 3 || fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, threads) != parts[3] {
		return argonParams{}, ErrMalformedHash
	}
	if p.time < 1 || p.time > maxArgonTime || threads < 1 || threads > maxArgonThreads ||
		p.memory < 8*threads || p.memory > maxArgonMemoryKiB {
		return argonParams{}, ErrMalformedHash
	}
	p.threads = uint8(threads)
	b64 := base64.RawStdEncoding.Strict()
	if p.salt, err = b64.DecodeString(parts[4]); err != nil || len(p.salt) < 8 || len(p.salt) > 64 {
		return argonParams{}, ErrMalformedHash
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) < 16 || len(p.key) > 64 {
		return argonParams{}, ErrMalformedHash
	}
	return p, nil
}

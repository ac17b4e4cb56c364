package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordHashAndCheck(t *testing.T) {
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string with the expected parameters", hash)
	}
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"right password", "correct horse battery staple", true},
		{"wrong password", "correct horse battery stapler", false},
		{"different case", "Correct horse battery staple", false},
		{"empty", "", false},
		{"prefix only", "correct horse", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CheckPassword(hash, tc.password)
			if err != nil {
				t.Fatalf("CheckPassword: %v", err)
			}
			if ok != tc.want {
				t.Errorf("CheckPassword(%q) = %v, want %v", tc.password, ok, tc.want)
			}
		})
	}
	if PasswordNeedsRehash(hash) {
		t.Error("a fresh hash needs a rehash")
	}
}

func TestHashPasswordSaltsEachHash(t *testing.T) {
	a, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two hashes of one password are identical: no salt")
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	for _, pw := range []string{"", strings.Repeat("x", MaxPasswordBytes+1)} {
		if _, err := HashPassword(pw); err == nil {
			t.Errorf("HashPassword(%d bytes) succeeded", len(pw))
		}
	}
}

func TestCheckPasswordOlderParameters(t *testing.T) {
	// "password" hashed by the reference argon2 CLI (echo -n password | argon2
	// somesaltsomesalt -id -m 13 -t 1 -p 1 -l 32 -e): older parameters still
	// check, but need a rehash.
	const older = "$argon2id$v=19$m=8192,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$hPsAa7w81piVcitktb9zUlGp6Onz7Lk/9ZW5iut6zLc"
	ok, err := CheckPassword(older, "password")
	if err != nil || !ok {
		t.Errorf("CheckPassword(older hash) = (%v, %v), want (true, nil)", ok, err)
	}
	if !PasswordNeedsRehash(older) {
		t.Error("a hash with older parameters does not need a rehash")
	}
}

func TestCheckPasswordMalformedHash(t *testing.T) {
	good, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1)},
		{"wrong version", strings.Replace(good, "v=19", "v=16", 1)},
		{"missing params", strings.Join(append(parts[:3:3], parts[4:]...), "$")},
		{"huge memory", strings.Replace(good, "m=19456", "m=4194304", 1)},
		{"huge time", strings.Replace(good, "t=2", "t=1000", 1)},
		{"zero threads", strings.Replace(good, "p=1", "p=0", 1)},
		{"params with junk", strings.Replace(good, "p=1", "p=1,x=2", 1)},
		{"bad salt", strings.Replace(good, parts[4], "!!!", 1)},
		{"short key", strings.Replace(good, parts[5], "AAAA", 1)},
		{"extra field", good + "$x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := CheckPassword(tc.hash, "pw")
			if ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("CheckPassword(%q) = (%v, %v), want (false, ErrMalformedHash)", tc.hash, ok, err)
			}
		})
	}
}

func TestDummyPasswordCheckDoesNotPanic(t *testing.T) {
	DummyPasswordCheck("whatever")
	DummyPasswordCheck("")
}

package auth

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestActivationCodeRoundTrip(t *testing.T) {
	shown := regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	for range 50 {
		code, err := NewActivationCode()
		if err != nil {
			t.Fatal(err)
		}
		if !shown.MatchString(code) {
			t.Fatalf("activation code %q is not three groups of four Crockford characters", code)
		}
		canonical := NormalizeActivationCode(code)
		if len(canonical) != 12 || strings.Contains(canonical, "-") {
			t.Fatalf("NormalizeActivationCode(%q) = %q, want 12 characters", code, canonical)
		}
		typed := []struct{ name, input string }{
			{"as shown", code},
			{"lower case", strings.ToLower(code)},
			{"no dashes", strings.ReplaceAll(code, "-", "")},
			{"spaces", strings.ReplaceAll(code, "-", " ")},
			{"padded", "  " + code + " "},
			{"O for zero", strings.ReplaceAll(code, "0", "O")},
			{"I for one", strings.ReplaceAll(code, "1", "I")},
			{"l for one", strings.ReplaceAll(strings.ToLower(code), "1", "l")},
		}
		for _, tc := range typed {
			if got := NormalizeActivationCode(tc.input); got != canonical {
				t.Errorf("%s: NormalizeActivationCode(%q) = %q, want %q", tc.name, tc.input, got, canonical)
			}
			if HashActivationCode(tc.input) != HashActivationCode(code) {
				t.Errorf("%s: HashActivationCode(%q) does not match the issued code", tc.name, tc.input)
			}
		}
	}
}

func TestActivationCodeMistypeDoesNotMatch(t *testing.T) {
	code, err := NewActivationCode()
	if err != nil {
		t.Fatal(err)
	}
	canonical := NormalizeActivationCode(code)
	wrong := []string{canonical[:11], canonical + "0", "U" + canonical[1:], "#" + canonical[1:]}
	for _, w := range wrong {
		if w != canonical && HashActivationCode(w) == HashActivationCode(code) {
			t.Errorf("mistyped %q matches code %q", w, code)
		}
	}
}

func TestNewRefreshToken(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok, err := NewRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) < 32 {
			t.Fatalf("refresh token %q: %d bytes (%v), want >= 32 base64url bytes", tok, len(raw), err)
		}
		if seen[tok] {
			t.Fatal("NewRefreshToken repeated a token")
		}
		seen[tok] = true
	}
}

func TestHashSecret(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 test vector.
	const want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashSecret("abc"); got != want {
		t.Errorf("HashSecret(abc) = %s, want %s", got, want)
	}
}

func TestNewID(t *testing.T) {
	idPattern := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"pt_", true},
		{"ac_", true},
		{"", true},
		{"ph-", true},
		{"p t", false},
		{"pt/", false},
		{"é_", false},
		{strings.Repeat("x", 45), false},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			id, err := NewID(tc.prefix)
			if !tc.ok {
				if err == nil {
					t.Errorf("NewID(%q) = %q, want an error", tc.prefix, id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(id, tc.prefix) || len(id) != len(tc.prefix)+20 || !idPattern.MatchString(id) || len(id) > 64 {
				t.Errorf("NewID(%q) = %q, want the prefix and 20 id characters", tc.prefix, id)
			}
			if other, _ := NewID(tc.prefix); other == id {
				t.Errorf("NewID(%q) repeated %q", tc.prefix, id)
			}
		})
	}
}

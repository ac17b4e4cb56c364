package auth

import (
	"testing"
	"time"
)

// The RFC 6238 appendix B vectors for SHA-1 (the 8-digit codes' last six
// digits are the 6-digit codes).
func TestTOTPMatchesRFC6238(t *testing.T) {
	secret := b32.EncodeToString([]byte("12345678901234567890"))
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		got, err := TOTPCode(secret, time.Unix(tc.unix, 0))
		if err != nil || got != tc.want {
			t.Errorf("TOTPCode at %d = %q, %v; want %q", tc.unix, got, err, tc.want)
		}
	}
}

func TestVerifyTOTPAcceptsOnceWithinSkew(t *testing.T) {
	secret, err := NewTOTPSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 14, 9, 0, 10, 0, time.UTC)
	prev, _ := TOTPCode(secret, now.Add(-TOTPPeriod))
	step, ok := VerifyTOTP(secret, prev, now, 0)
	if !ok || step != TOTPStep(now)-1 {
		t.Fatalf("previous step's code refused (%d, %v)", step, ok)
	}
	if _, ok := VerifyTOTP(secret, prev, now, step); ok {
		t.Fatal("a used code was accepted again")
	}
	cur, _ := TOTPCode(secret, now)
	if _, ok := VerifyTOTP(secret, cur, now, step); !ok {
		t.Fatal("the current code refused after the previous one was used")
	}
	old, _ := TOTPCode(secret, now.Add(-3*TOTPPeriod))
	if _, ok := VerifyTOTP(secret, old, now, 0); ok {
		t.Fatal("a code three steps old was accepted")
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := VerifyTOTP(secret, bad, now, 0); ok {
			t.Fatalf("code %q accepted", bad)
		}
	}
	if ValidTOTPSecret("not base32!") || !ValidTOTPSecret(secret) {
		t.Fatal("ValidTOTPSecret is wrong")
	}
}

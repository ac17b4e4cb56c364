package auth

import (
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

func BenchmarkIssueAccess(b *testing.B) {
	f := newFixture(b)
	p := Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"}
	for b.Loop() {
		if _, _, err := f.tokens.IssueAccess(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is a token's every call after its first: the claims
// come from the cache, only their times are checked.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok := f.issue(b, Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"})
	for b.Loop() {
		if _, err := f.tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFirstUse is a token's first call: the ES256 signature.
func BenchmarkVerifyFirstUse(b *testing.B) {
	f := newFixture(b)
	tok := f.issue(b, Principal{Subject: "pt_1", Role: store.RolePatient, SessionID: "fam_1"})
	for b.Loop() {
		f.tokens.verified = newClaimCache(DefaultVerifiedCache)
		if _, err := f.tokens.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRefusesOversized(b *testing.B) {
	f := newFixture(b)
	tok := string(make([]byte, 1<<20))
	for b.Loop() {
		if _, err := f.tokens.Verify(tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkCheckPassword(b *testing.B) {
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := CheckPassword(hash, "correct horse battery staple"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkDummyPasswordCheck(b *testing.B) {
	for b.Loop() {
		DummyPasswordCheck("correct horse battery staple")
	}
}

package auth

import (
	"errors"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, must
// refuse with ErrInvalidToken, and anything it accepts must be a principal
// IssueAccess could have issued. The seeds are the attack corpus and a
// valid token.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	for _, a := range attackCorpus(f, fx) {
		f.Add(a.token)
	}
	f.Add(fx.issue(f, Principal{Subject: "ac_1", Role: store.RolePharmacist, PharmacyID: "ph_1", SessionID: "fam_1"}))
	f.Fuzz(func(t *testing.T, token string) {
		p, err := fx.tokens.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidToken", err)
			}
			if p != (Principal{}) {
				t.Fatalf("refused token yielded principal %+v", p)
			}
			return
		}
		if verr := p.validate(); verr != nil {
			t.Fatalf("accepted principal %+v is invalid: %v", p, verr)
		}
	})
}

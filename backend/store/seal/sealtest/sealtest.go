// Package sealtest gives tests key-encryption keys to rotate, as an
// operator rotates a local Tink keyset file: add a new primary key, run
// the re-encryption pass, then drop the old key.
package sealtest

import (
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEKRotation returns the three stages of one KEK's rotation: before
// (the old key alone), during (old and new, the new one primary) and
// after (the new key alone).
func KEKRotation(t testing.TB) (before, during, after tink.AEAD) {
	t.Helper()
	m := keyset.NewManager()
	oldID, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(oldID); err != nil {
		t.Fatal(err)
	}
	before = handleAEAD(t, m)
	newID, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(newID); err != nil {
		t.Fatal(err)
	}
	during = handleAEAD(t, m)
	if err := m.Delete(oldID); err != nil {
		t.Fatal(err)
	}
	after = handleAEAD(t, m)
	return before, during, after
}

func handleAEAD(t testing.TB, m *keyset.Manager) tink.AEAD {
	t.Helper()
	h, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

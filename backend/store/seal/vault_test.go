package seal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mtmapp/mtm/backend/store/seal"
	"github.com/mtmapp/mtm/backend/store/seal/sealtest"
)

// A store opened with another key-encryption key than the one that made
// its keys must refuse to start, not write records nobody can read.
func TestVaultRefusesAnotherKEK(t *testing.T) {
	kek := newKEK(t)
	keys, err := seal.NewVaultKeys(kek)
	if err != nil {
		t.Fatal(err)
	}
	back, err := seal.UnmarshalVaultKeys(keys.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenVault(kek, back, 0); err != nil {
		t.Fatalf("the KEK that made the keys: %v", err)
	}
	if _, err := seal.OpenVault(newKEK(t), back, 0); !errors.Is(err, seal.ErrWrongKEK) {
		t.Fatalf("another KEK: got %v, want ErrWrongKEK", err)
	}
	if _, err := seal.UnmarshalVaultKeys(keys.Marshal()[:10]); err == nil {
		t.Fatal("truncated vault keys were accepted")
	}
}

// A sealed value opens only behind the clear header it was sealed with, in
// its own patient's key, kind and id; the same index of the same value is
// stable and differs between purposes.
func TestVaultValues(t *testing.T) {
	kek := newKEK(t)
	keys, _ := seal.NewVaultKeys(kek)
	v, err := seal.OpenVault(kek, keys, 4)
	if err != nil {
		t.Fatal(err)
	}
	wa, _ := v.NewPatientKey("pa")
	wb, _ := v.NewPatientKey("pb")
	ka, err := v.PatientKey("pa", wa)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := v.PatientKey("pb", wb)
	if _, err := v.PatientKey("pb", wa); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("pa's wrapped key opened as pb's: %v", err)
	}
	header := []byte{2, 0, 0, 0, 0, 0, 0, 0, 7}
	plain := []byte("Warfarin 5 mg, allergy: penicillin")
	val, err := ka.SealValue("patient", "pa", header, plain)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(val, header) || bytes.Contains(val, []byte("Warfarin")) {
		t.Fatal("sealed value must start with the clear header and hold no clear text")
	}
	got, err := ka.OpenValue("patient", "pa", len(header), val)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}
	if !ka.CurrentValue(len(header), val) {
		t.Fatal("a fresh value is not current")
	}
	swapped := bytes.Clone(val)
	swapped[8] = 8 // another version in the clear header
	for name, try := range map[string]func() error{
		"header changed": func() error { _, err := ka.OpenValue("patient", "pa", len(header), swapped); return err },
		"other patient":  func() error { _, err := kb.OpenValue("patient", "pa", len(header), val); return err },
		"other id":       func() error { _, err := ka.OpenValue("patient", "pb", len(header), val); return err },
		"other kind":     func() error { _, err := ka.OpenValue("thread", "pa", len(header), val); return err },
		"short":          func() error { _, err := ka.OpenValue("patient", "pa", len(val)+1, val); return err },
	} {
		if err := try(); !errors.Is(err, seal.ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
	}
	if a, b := v.Blind("account-email", "x@example.org"), v.Blind("account-email", "x@example.org"); a != b {
		t.Fatal("blind index not stable")
	}
	if v.Blind("account-email", "x@example.org") == v.Blind("throttle", "x@example.org") {
		t.Fatal("blind indexes of two purposes agree")
	}
}

// TestVaultRewrapAfterKEKRotation: after a KEK rotation the store's own
// keys, rewrapped, open under the new key alone; not rewrapped, they
// would lock the store out once the old key is removed.
func TestVaultRewrapAfterKEKRotation(t *testing.T) {
	before, during, after := sealtest.KEKRotation(t)
	keys, err := seal.NewVaultKeys(before)
	if err != nil {
		t.Fatal(err)
	}
	v, err := seal.OpenVault(during, keys, 0)
	if err != nil {
		t.Fatalf("the rotating KEK must open keys of its old version: %v", err)
	}
	wrapped, _ := v.NewPatientKey("pa")
	rewrapped, err := v.Rewrap(keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenVault(after, keys, 0); !errors.Is(err, seal.ErrWrongKEK) {
		t.Fatalf("keys not rewrapped opened under the new key alone: %v", err)
	}
	v2, err := seal.OpenVault(after, rewrapped, 0)
	if err != nil {
		t.Fatalf("rewrapped keys under the new key alone: %v", err)
	}
	if v.Blind("account-email", "a@b.c") != v2.Blind("account-email", "a@b.c") {
		t.Fatal("rewrapping changed the index key: every blind index would be lost")
	}
	sealed, _ := v.Directory().SealValue("account", "a1", nil, []byte("x"))
	if got, err := v2.Directory().OpenValue("account", "a1", 0, sealed); err != nil || string(got) != "x" {
		t.Fatalf("rewrapping changed the directory key: %q %v", got, err)
	}
	// A patient key created during the rotation is wrapped by the new key.
	if _, err := v2.PatientKey("pa", wrapped); err != nil {
		t.Fatalf("a data key wrapped during the rotation: %v", err)
	}
}

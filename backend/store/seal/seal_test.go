package seal_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/mtmapp/mtm/backend/store/seal"
)

func newKEK(t testing.TB) tink.AEAD {
	t.Helper()
	kek, _, err := seal.LoadOrCreateLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

func openKey(t *testing.T, kek tink.AEAD, scope string, wrapped []byte) *seal.DataKey {
	t.Helper()
	dk, err := seal.OpenDataKey(kek, scope, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func TestLocalKEKFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "phi-kek.json")
	kek, created, err := seal.LoadOrCreateLocalKEK(path)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	wrapped, err := seal.NewDataKey(kek, "p1")
	if err != nil {
		t.Fatal(err)
	}

	// A restart reads the same key: what the first process wrapped opens.
	again, created, err := seal.LoadOrCreateLocalKEK(path)
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if _, err := seal.OpenDataKey(again, "p1", wrapped); err != nil {
		t.Fatalf("restart cannot open a data key wrapped before it: %v", err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := seal.LoadOrCreateLocalKEK(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable key file was accepted: %v", err)
	}

	junk := filepath.Join(t.TempDir(), "junk.json")
	if err := os.WriteFile(junk, []byte(`{"not":"a keyset"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := seal.LoadOrCreateLocalKEK(junk); err == nil {
		t.Fatal("a file that is no keyset was accepted as the key-encryption key")
	}
}

// Instances starting together on an empty data directory must agree on
// one key, or each would write records the others cannot read.
func TestLocalKEKConcurrentFirstStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phi-kek.json")
	const n = 8
	keks := make([]tink.AEAD, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kek, _, err := seal.LoadOrCreateLocalKEK(path)
			if err != nil {
				t.Error(err)
			}
			keks[i] = kek
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	wrapped, err := seal.NewDataKey(keks[0], "p1")
	if err != nil {
		t.Fatal(err)
	}
	for i, kek := range keks {
		if _, err := seal.OpenDataKey(kek, "p1", wrapped); err != nil {
			t.Fatalf("instance %d holds another key-encryption key: %v", i, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".phi-kek-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func TestCiphertextOpensOnlyWhereItWasWritten(t *testing.T) {
	kek := newKEK(t)
	w1, err := seal.NewDataKey(kek, "p1")
	if err != nil {
		t.Fatal(err)
	}
	w2, err := seal.NewDataKey(kek, "p2")
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := openKey(t, kek, "p1", w1), openKey(t, kek, "p2", w2)

	record := []byte("warfarin 5 mg; allergy: sulfa 磺胺")
	ct, err := k1.Seal("medication", "m1", record)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("warfarin")) {
		t.Fatal("ciphertext holds the clear text")
	}
	got, err := k1.Open("medication", "m1", ct)
	if err != nil || !bytes.Equal(got, record) {
		t.Fatalf("round trip: %q, %v", got, err)
	}

	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	otherKEK := newKEK(t)
	for name, open := range map[string]func() error{
		"another record id":     func() error { _, err := k1.Open("medication", "m2", ct); return err },
		"another kind":          func() error { _, err := k1.Open("allergy", "m1", ct); return err },
		"another patient's key": func() error { _, err := k2.Open("medication", "m1", ct); return err },
		"an altered byte":       func() error { _, err := k1.Open("medication", "m1", flipped); return err },
		"p1's wrapped key opened as p2's": func() error {
			_, err := seal.OpenDataKey(kek, "p2", w1)
			return err
		},
		"p1's wrapped key under another KEK": func() error {
			_, err := seal.OpenDataKey(otherKEK, "p1", w1)
			return err
		},
	} {
		if err := open(); !errors.Is(err, seal.ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		} else if strings.Contains(err.Error(), "warfarin") {
			t.Errorf("%s: the error carries PHI: %v", name, err)
		}
	}
}

func TestRotationKeepsOldCiphertextsUntilRetired(t *testing.T) {
	kek := newKEK(t)
	w, err := seal.NewDataKey(kek, "p1")
	if err != nil {
		t.Fatal(err)
	}
	old, err := openKey(t, kek, "p1", w).Seal("record", "p1", []byte("before rotation"))
	if err != nil {
		t.Fatal(err)
	}

	w, err = seal.RotateDataKey(kek, "p1", w)
	if err != nil {
		t.Fatal(err)
	}
	k := openKey(t, kek, "p1", w)
	if k.Versions() != 2 {
		t.Fatalf("after rotation the key holds %d versions, want 2", k.Versions())
	}
	if pt, err := k.Open("record", "p1", old); err != nil || string(pt) != "before rotation" {
		t.Fatalf("a ciphertext from before the rotation no longer opens: %q %v", pt, err)
	}
	if k.Current(old) {
		t.Fatal("a ciphertext under the old version counts as current: re-encryption would skip it")
	}
	fresh, err := k.Seal("record", "p1", []byte("after rotation"))
	if err != nil {
		t.Fatal(err)
	}
	if !k.Current(fresh) {
		t.Fatal("a new seal does not use the new version")
	}
	oldV, _ := seal.KeyVersion(old)
	newV, _ := seal.KeyVersion(fresh)
	if oldV == newV {
		t.Fatalf("old and new ciphertexts name the same key version %d", oldV)
	}

	w, err = seal.RetireKeys(kek, "p1", w)
	if err != nil {
		t.Fatal(err)
	}
	k = openKey(t, kek, "p1", w)
	if k.Versions() != 1 {
		t.Fatalf("after retiring the key holds %d versions, want 1", k.Versions())
	}
	if _, err := k.Open("record", "p1", old); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("a ciphertext under a retired version still opens: %v", err)
	}
	if pt, err := k.Open("record", "p1", fresh); err != nil || string(pt) != "after rotation" {
		t.Fatalf("retiring broke current ciphertexts: %q %v", pt, err)
	}
}

// testKMS stands for a cloud KMS: Tink's registry hands its AEAD out by URI.
type testKMS struct{ aead tink.AEAD }

func (c testKMS) Supported(uri string) bool { return strings.HasPrefix(uri, "test-kms://") }
func (c testKMS) GetAEAD(uri string) (tink.AEAD, error) {
	return c.aead, nil
}

func TestKMSKeyEncryptionKey(t *testing.T) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	seal.RegisterKMS(testKMS{aead: a})
	kek, err := seal.KMSKEK("test-kms://pharmacy-kek")
	if err != nil {
		t.Fatal(err)
	}
	w, err := seal.NewDataKey(kek, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenDataKey(a, "p1", w); err != nil {
		t.Fatalf("the data key was not wrapped by the KMS key: %v", err)
	}
	if _, err := seal.KMSKEK("nowhere-kms://x"); err == nil || !strings.Contains(err.Error(), "RegisterKMS") {
		t.Fatalf("an unregistered KMS URI: %v", err)
	}
}

func TestBlindIndex(t *testing.T) {
	kek := newKEK(t)
	w, err := seal.NewIndexKey(kek)
	if err != nil {
		t.Fatal(err)
	}
	ik, err := seal.OpenIndexKey(kek, w)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := ik.Index("account-email", "ana@example.org")
	a2, _ := ik.Index("account-email", "ana@example.org")
	b, _ := ik.Index("account-email", "bob@example.org")
	c, _ := ik.Index("patient-name-dob", "ana@example.org")
	if a1 != a2 {
		t.Fatal("the same value indexes differently: lookups would miss")
	}
	if a1 == b || a1 == c {
		t.Fatal("different values or purposes share an index")
	}
	if len(a1) != 32 || strings.Contains(a1, "ana") {
		t.Fatalf("index %q", a1)
	}

	w2, _ := seal.NewIndexKey(kek)
	ik2, err := seal.OpenIndexKey(kek, w2)
	if err != nil {
		t.Fatal(err)
	}
	if other, _ := ik2.Index("account-email", "ana@example.org"); other == a1 {
		t.Fatal("two index keys give the same index: it is not keyed")
	}
	if _, err := seal.OpenIndexKey(newKEK(t), w); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("index key opened under another KEK: %v", err)
	}
}

func TestKeyringCachesAndForgets(t *testing.T) {
	kek := newKEK(t)
	r := seal.NewKeyring(kek, 2)
	w1, _ := seal.NewDataKey(kek, "p1")
	w2, _ := seal.NewDataKey(kek, "p2")
	w3, _ := seal.NewDataKey(kek, "p3")

	a, err := r.DataKey("p1", w1)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := r.DataKey("p1", w1); b != a {
		t.Fatal("a second read of the same data key opened it again")
	}
	if _, err := r.DataKey("p2", w1); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("the cache answered for a wrapped key presented under another scope: %v", err)
	}
	rotated, _ := seal.RotateDataKey(kek, "p1", w1)
	if c, _ := r.DataKey("p1", rotated); c == a {
		t.Fatal("a rotated data key was served from the cache as the old one")
	}
	r.DataKey("p2", w2)
	r.DataKey("p3", w3) // evicts the least recently used
	if again, _ := r.DataKey("p1", w1); again == a {
		t.Fatal("the cache holds more than its bound")
	}
	held, _ := r.DataKey("p1", w1)
	if same, _ := r.DataKey("p1", w1); same != held {
		t.Fatal("the cache did not keep the key just opened")
	}
	r.Forget("p1")
	if again, _ := r.DataKey("p1", w1); again == held {
		t.Fatal("Forget kept the key open")
	}
}

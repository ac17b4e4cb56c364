package bolt_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/backend/store/seal"
	"github.com/mtmapp/mtm/backend/store/seal/sealtest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// openOpts opens a store in path with opts and closes it when the test ends.
func openOpts(t *testing.T, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	opts.Logger = discard()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fileMarkers counts the clear markers in the file at path.
func fileMarkers(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, where := storetest.MarkerHits([][]byte{b})
	for _, w := range where {
		t.Log(w)
	}
	return n
}

// TestMigrationFromAClearFile writes the marker world as the store did
// before sealing (NoSeal: clear values, clear e-mails and code hashes in
// keys), then opens the file as an upgraded mtmd would: everything reads,
// a re-encryption pass seals it, and a copy of the file then holds no
// marker, free pages included.
func TestMigrationFromAClearFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtm.db")
	old := openOpts(t, path, bolt.Options{NoSeal: true})
	w := storetest.SeedMarkers(t, old)
	old.Close()
	if n := fileMarkers(t, path); n < 20 {
		t.Fatalf("the clear file holds %d markers: the scan would not see clear PHI", n)
	}

	// The upgraded store reads the old file as it is.
	s := openOpts(t, path, bolt.Options{})
	ctx := t.Context()
	p, err := s.GetPatient(ctx, "pat-mark")
	if err != nil || len(p.Medications) != 21 || !strings.HasPrefix(p.FamilyName, storetest.Marker) {
		t.Fatalf("GetPatient of a clear record: %d medications, %v", len(p.Medications), err)
	}
	if a, err := s.GetAccountByEmail(ctx, "MRKZQ.carer@example.com"); err != nil || a.ID != "acct-caregiver-0042" {
		t.Fatalf("GetAccountByEmail through a clear index entry: %q, %v", a.ID, err)
	}
	if c, err := s.GetActivationCode(ctx, "mrkzq-activation-code-hash", p.CreatedAt); err != nil || c.PatientID != "pat-mark" {
		t.Fatalf("GetActivationCode under a clear code hash: %v", err)
	}
	if ms, err := s.ListMessages(ctx, "th-mark", 0, 10); err != nil || len(ms) != 2 || !strings.HasPrefix(ms[0].Body, storetest.Marker) {
		t.Fatalf("ListMessages of clear messages: %d, %v", len(ms), err)
	}
	// The name index did not exist: the pass builds it.
	if found, err := s.FindPatients(ctx, "ph-mark", p.FamilyName, p.DateOfBirth); err != nil || len(found) != 0 {
		t.Fatalf("FindPatients before the pass: %d, %v", len(found), err)
	}
	var sum store.ReencryptPage
	cursor := ""
	for range 100 {
		page, err := s.Reencrypt(t.Context(), cursor, store.ReencryptOptions{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		sum.Patients += page.Patients
		sum.Resealed += page.Resealed
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if cursor != "" || sum.Patients != 2 || sum.Resealed < 10 {
		t.Fatalf("migration pass: %+v, cursor %q; want 2 patients and the clear values resealed", sum, cursor)
	}
	storetest.CheckMarkers(t, s, w)
	s.Close()
	if n := fileMarkers(t, path); n != 0 {
		t.Fatalf("after the migration pass the file still holds %d clear markers", n)
	}
	// A second pass finds nothing left to seal.
	s = openOpts(t, path, bolt.Options{})
	page, err := s.Reencrypt(t.Context(), "", store.ReencryptOptions{})
	if err != nil || page.Resealed != 0 || page.Next != "" {
		t.Fatalf("second pass = %+v, %v; want nothing resealed", page, err)
	}
}

// TestFreePagesKeepOverwrittenValuesUntilScrubbed pins why
// ScrubFreePages exists: bbolt leaves a replaced value in the page it
// freed, so a record sealed on its next write is still clear in the file
// until the page is reused or scrubbed.
func TestFreePagesKeepOverwrittenValuesUntilScrubbed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtm.db")
	old := openOpts(t, path, bolt.Options{NoSeal: true})
	if err := old.CreatePatient(t.Context(), storetest.MarkerPatient("pat-1", "ph-1")); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := openOpts(t, path, bolt.Options{})
	_, err := s.UpdatePatient(t.Context(), "pat-1", func(p store.Patient) (store.Patient, error) { return p, nil })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := fileMarkers(t, path)
	if before == 0 {
		t.Log("bbolt reused the freed page already; nothing to pin")
	}

	s = openOpts(t, path, bolt.Options{})
	if err := s.ScrubFreePages(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPatient(t.Context(), "pat-1"); err != nil {
		t.Fatalf("GetPatient after the scrub: %v", err)
	}
	s.Close()
	if n := fileMarkers(t, path); n != 0 {
		t.Fatalf("after ScrubFreePages the file holds %d clear markers (%d before)", n, before)
	}
	t.Logf("clear markers in free pages: %d before the scrub, 0 after", before)
}

// rawValue reads one value of the file with bbolt directly (the store
// closed).
func rawValue(t *testing.T, path string, bucket, key string) []byte {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	db.View(func(tx *bbolt.Tx) error {
		v = bytes.Clone(tx.Bucket([]byte(bucket)).Get([]byte(key)))
		return nil
	})
	if v == nil {
		t.Fatalf("no %s %s in the file", bucket, key)
	}
	return v
}

// TestDeletePatientLeavesNeitherKeyNorCiphertextInTheFile: after
// DeletePatient the file (free pages included) holds neither the
// patient's wrapped data key nor their sealed record.
func TestDeletePatientLeavesNeitherKeyNorCiphertextInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtm.db")
	s := openOpts(t, path, bolt.Options{})
	for _, id := range []string{"pat-1", "pat-2"} {
		if err := s.CreatePatient(t.Context(), storetest.MarkerPatient(id, "ph-1")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	wrapped := rawValue(t, path, "patient_keys", "pat-1")
	record := rawValue(t, path, "patients", "pat-1")

	s = openOpts(t, path, bolt.Options{})
	if _, err := s.DeletePatient(t.Context(), "pat-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPatient(t.Context(), "pat-2"); err != nil {
		t.Fatalf("the other patient: %v", err)
	}
	s.Close()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, wrapped) {
		t.Error("the deleted patient's wrapped data key is still in the file")
	}
	if bytes.Contains(file, record[len(record)-64:]) {
		t.Error("the deleted patient's sealed record is still in the file")
	}
}

// TestCiphertextMovedToAnotherPatientDoesNotOpen copies one patient's
// sealed record over another's in the file: reading it fails with
// seal.ErrTampered, and the error names ids only.
func TestCiphertextMovedToAnotherPatientDoesNotOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtm.db")
	s := openOpts(t, path, bolt.Options{})
	for _, id := range []string{"pat-1", "pat-2"} {
		if err := s.CreatePatient(t.Context(), storetest.MarkerPatient(id, "ph-1")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	moved := rawValue(t, path, "patients", "pat-1")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("patients")).Put([]byte("pat-2"), moved) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openOpts(t, path, bolt.Options{})
	_, err = s.GetPatient(t.Context(), "pat-2")
	if !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("GetPatient of a moved ciphertext: %v, want seal.ErrTampered", err)
	}
	if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(storetest.Marker)) {
		t.Fatalf("the error names PHI: %v", err)
	}
	if _, err := s.GetPatient(t.Context(), "pat-1"); err != nil {
		t.Fatalf("the original: %v", err)
	}
}

// TestKEK: with no KEK the store creates the local key file beside the
// data file (0600) and reopens with it; another KEK is refused with
// seal.ErrWrongKEK rather than writing records nobody could read.
func TestKEK(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mtm.db")
	s := openOpts(t, path, bolt.Options{})
	if err := s.CreatePatient(t.Context(), storetest.SamplePatient("pat-1", "ph-1", 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(seal.LocalKEKPath(dir))
	if err != nil {
		t.Fatalf("no local KEK file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("local KEK file mode %v, want 0600", fi.Mode().Perm())
	}
	s = openOpts(t, path, bolt.Options{})
	if _, err := s.GetPatient(t.Context(), "pat-1"); err != nil {
		t.Fatalf("GetPatient after reopening: %v", err)
	}
	s.Close()

	other, _, err := seal.LoadOrCreateLocalKEK(filepath.Join(t.TempDir(), "other-kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err = bolt.Open(path, bolt.Options{Logger: discard(), KEK: other})
	if err == nil {
		s.Close()
		t.Fatal("Open with another KEK succeeded")
	}
	if !errors.Is(err, seal.ErrWrongKEK) {
		t.Fatalf("Open with another KEK: %v, want seal.ErrWrongKEK", err)
	}
	// Explicitly passing the file's KEK works as nil does.
	kek, created, err := seal.LoadOrCreateLocalKEK(seal.LocalKEKPath(dir))
	if err != nil || created {
		t.Fatalf("LoadOrCreateLocalKEK: created %v, %v", created, err)
	}
	s = openOpts(t, path, bolt.Options{KEK: kek})
	if _, err := s.GetPatient(t.Context(), "pat-1"); err != nil {
		t.Fatalf("GetPatient with the explicit KEK: %v", err)
	}
}

// TestScrubFreePagesDoesNotGrowTheFile: a scrub per deletion must not
// make the file grow with the number of deletions: the filler takes the
// free pages, not new ones (a couple of pages per scrub at most).
func TestScrubFreePagesDoesNotGrowTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtm.db")
	s := openOpts(t, path, bolt.Options{NoSync: true})
	ctx := t.Context()
	for i := range 200 {
		if err := s.CreatePatient(ctx, storetest.SamplePatient(fmt.Sprintf("pat-%d", i), "ph-1", 20)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		_, err := s.UpdatePatient(ctx, fmt.Sprintf("pat-%d", i), func(p store.Patient) (store.Patient, error) {
			p.Medications = p.Medications[:i%20]
			return p, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pages := func() int { st := s.Stats(); return st.FreePageN + st.PendingPageN }
	if err := s.ScrubFreePages(ctx); err != nil {
		t.Fatal(err)
	}
	first := pages()
	const scrubs = 10
	for range scrubs {
		if err := s.ScrubFreePages(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if grown := pages() - first; grown > 3*scrubs {
		t.Fatalf("free pages grew by %d over %d scrubs (from %d)", grown, scrubs, first)
	}
}

// TestKEKRotation follows the README's rotation of a local key file: the
// store runs under the old key, then under old+new (new primary) while a
// pass rewraps everything, then under the new key alone: everything must
// still read. Without the pass's rewrapping of the store's own keys the
// last open fails with seal.ErrWrongKEK.
func TestKEKRotation(t *testing.T) {
	before, during, after := sealtest.KEKRotation(t)
	path := filepath.Join(t.TempDir(), "mtm.db")
	s := openOpts(t, path, bolt.Options{KEK: before})
	w := storetest.SeedMarkers(t, s)
	s.Close()

	s = openOpts(t, path, bolt.Options{KEK: during})
	cursor := ""
	for {
		page, err := s.Reencrypt(t.Context(), cursor, store.ReencryptOptions{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	s.Close()

	s = openOpts(t, path, bolt.Options{KEK: after})
	storetest.CheckMarkers(t, s, w)
}

package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// BenchmarkGetPatient20Meds reads one patient record with 20 medications
// (storetest.SamplePatient, the same data the Redis benchmark reads).
func BenchmarkGetPatient20Meds(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	if err := s.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.GetPatient(ctx, "pat-1")
		if err != nil || len(p.Medications) != 20 {
			b.Fatalf("GetPatient: %d medications, %v", len(p.Medications), err)
		}
	}
}

// BenchmarkUpdatePatient20Meds changes one field of a 20-medication
// record: one durable (fsynced) read-modify-write transaction.
func BenchmarkUpdatePatient20Meds(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	if err := s.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Questions = "Is it safe to take my evening doses together?"
			return p, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

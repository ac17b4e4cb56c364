package bolt_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// sealModes are the two ways a benchmark runs: values sealed at rest (the
// default) and written clear as before (Options.NoSeal), for the ratio.
var sealModes = []struct {
	name   string
	noSeal bool
}{{"sealed", false}, {"noseal", true}}

// BenchmarkGetPatient20Meds reads one patient record with 20 medications
// (storetest.SamplePatient, the same data the Redis benchmark reads),
// sealed and clear.
func BenchmarkGetPatient20Meds(b *testing.B) {
	for _, m := range sealModes {
		b.Run(m.name, func(b *testing.B) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: discard(), NoSeal: m.noSeal})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			ctx := b.Context()
			if err := s.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			defer storetest.ReportCPU(b)()
			for b.Loop() {
				p, err := s.GetPatient(ctx, "pat-1")
				if err != nil || len(p.Medications) != 20 {
					b.Fatalf("GetPatient: %d medications, %v", len(p.Medications), err)
				}
			}
		})
	}
}

// BenchmarkUpdatePatient20Meds changes one field of a 20-medication
// record: one read-modify-write transaction, durable (fsynced) and, to
// show the CPU cost alone, without fsync; sealed and clear.
func BenchmarkUpdatePatient20Meds(b *testing.B) {
	for _, sync := range []bool{true, false} {
		for _, m := range sealModes {
			b.Run(fmt.Sprintf("fsync=%v/%s", sync, m.name), func(b *testing.B) {
				s, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: discard(), NoSeal: m.noSeal, NoSync: !sync})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				ctx := b.Context()
				if err := s.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				defer storetest.ReportCPU(b)()
				for b.Loop() {
					_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
						p.Questions = "Is it safe to take my evening doses together?"
						return p, nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkListWorklist reads a page of 50 from a work list of a pharmacy
// of 1,000 and of 20,000 patients, 50 of them due: the cost of the range
// query should not depend on the pharmacy's size.
func BenchmarkListWorklist(b *testing.B) {
	due := store.Date{Year: 2026, Month: 3, Day: 1}
	for _, n := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("patients=%d", n), func(b *testing.B) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: discard(), NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			ctx := b.Context()
			for i := range n {
				p := storetest.SamplePatient(fmt.Sprintf("pat-%06d", i), "ph-1", 5)
				p.Worklist = store.WorklistDates{CMRDue: due.AddDays(1 + i%300)}
				if i%(n/50) == 0 {
					p.Worklist.CMRDue = due.AddDays(-i % 30)
				}
				if err := s.CreatePatient(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				page, err := s.ListWorklist(ctx, "ph-1", store.WorklistCMRDue, due, store.WorklistCursor{}, 50)
				if err != nil || len(page) != 50 {
					b.Fatalf("ListWorklist: %d, %v", len(page), err)
				}
			}
		})
	}
}

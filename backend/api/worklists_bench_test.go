package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// BenchmarkPharmacyWorklists answers the pharmacy work lists (a page of
// 50) for a pharmacy of 1,000 and of 20,000 patients, 50 of whom are on
// each list; the others take a statin every day and had their CMR this
// year (on 1 May 2026). The lists read the index, so the two sizes should
// cost the same; scanBaseline is what reading every patient costs:
//
//	go test ./backend/api -run '^$' -bench PharmacyWorklists
func BenchmarkPharmacyWorklists(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("patients=%d", n), func(b *testing.B) {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			e := newEnvOn(b, st)
			e.clock.Advance(60 * 24 * time.Hour) // 1 May 2026: PQA measures from 91 days after 2 January
			rph := e.pharmacy("ph_bench", "rph@bench.test")
			now := e.clock.Now()
			ctx := context.Background()
			for i := range n {
				pt := benchPatient(fmt.Sprintf("pt_%06d", i), "ph_bench", i < 50, now)
				pt.Worklist = clinical.WorklistDates(pt, now)
				if err := st.CreatePatient(ctx, pt); err != nil {
					b.Fatal(err)
				}
			}
			care := e.careClient(rph)
			b.Run("below80", func(b *testing.B) {
				for b.Loop() {
					res, err := care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 50}))
					if err != nil || len(res.Msg.GetPatients()) != 50 {
						b.Fatalf("%d patients below, %v", len(res.Msg.GetPatients()), err)
					}
				}
			})
			// What the lists did before the index: read every patient of
			// the pharmacy and measure each (store reads and the clinical
			// rule only, no RPC).
			b.Run("scanBaseline", func(b *testing.B) {
				for b.Loop() {
					found, after := 0, ""
					for {
						page, err := st.ListPatients(ctx, "ph_bench", after, 200)
						if err != nil {
							b.Fatal(err)
						}
						for _, pt := range page {
							after = pt.ID
							if len(clinical.BelowThreshold(pt, clinical.Today(pt, now))) > 0 {
								found++
							}
						}
						if len(page) < 200 {
							break
						}
					}
					if found != 50 {
						b.Fatalf("scan found %d patients below, want 50", found)
					}
				}
			})
			b.Run("cmrDue", func(b *testing.B) {
				for b.Loop() {
					res, err := care.ListPatientsDueForCmr(ctx, req(&mtmv1.ListPatientsDueForCmrRequest{PageSize: 50}))
					if err != nil || len(res.Msg.GetPatients()) != 50 {
						b.Fatalf("%d patients due, %v", len(res.Msg.GetPatients()), err)
					}
				}
			})
		})
	}
}

// benchPatient takes a statin since 2025; a listed one stopped filling it
// in December and had the last CMR more than a year ago.
func benchPatient(id, pharmacyID string, listed bool, now time.Time) store.Patient {
	day := store.DateOf(now)
	pt := store.Patient{ID: id, PharmacyID: pharmacyID, GivenName: "Pat", FamilyName: id, TimeZone: "America/Chicago",
		CreatedAt: now.AddDate(-2, 0, 0), UpdatedAt: now,
		Medications: []store.Medication{{ID: "md_1", Name: "Atorvastatin 20 mg", HowIUseIt: "1 tablet at night", StartedOn: day.AddDays(-700), Version: 1}},
		Reviews:     []store.Review{{ID: "rv_1", Kind: clinical.ReviewCMR, ReviewedOn: day.AddDays(-60)}}}
	if listed {
		pt.Reviews[0].ReviewedOn = day.AddDays(-400)
	}
	// 2026: 30-day fills from 2 January, covering through 1 May; a listed
	// patient's stop after two.
	fills := 4
	if listed {
		fills = 2
	}
	for k := range fills {
		pt.Fills = append(pt.Fills, store.Fill{ID: fmt.Sprintf("fl_%d", k), MedicationID: "md_1", FilledOn: store.Date{Year: 2026, Month: time.January, Day: 2}.AddDays(30 * k), DaysSupply: 30})
	}
	return pt
}

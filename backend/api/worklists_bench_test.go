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
	"github.com/mtmapp/mtm/backend/store/storetest"
	"github.com/mtmapp/mtm/loadtest/seed"
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

// BenchmarkWorklistPages opens the first page (25, a console screen) of
// each work list as the load test does (mtmload's work-list phase), on its
// population (loadtest/seed: 5–20 medicines, every fourth patient below
// 80% PDC, every fourth with an overdue follow-up), at a pharmacy of
// 20,000 patients and at one of 2,000 in the same bbolt file. cpu-ns/op is
// the process's CPU (server and client); meds/entry is the mean number of
// medicines of the records on the page:
//
//	go test ./backend/api -run '^$' -bench WorklistPages -benchtime 2s
func BenchmarkWorklistPages(b *testing.B) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	e := newEnvOn(b, st)
	e.clock.Advance(273 * 24 * time.Hour) // 30 November 2026, late in the measurement year as when the load test was measured
	ctx := context.Background()
	const large, small = 20000, 2000
	pop, err := seed.Seed(ctx, st, seed.Options{Patients: large + small, PatientsPerPharmacy: large, SmallPharmacy: small,
		PharmacistsPerPharmacy: 1, CaregiverEvery: 1 << 30, Now: e.clock.Now(), RandomSeed: 1})
	if err != nil {
		b.Fatal(err)
	}
	meds := map[string]int{}
	for _, pt := range pop.Patients {
		meds[pt.ID] = pt.Medicines
	}
	for k, size := range []int{large, small} {
		res, err := e.authClient().Login(ctx, req(&mtmv1.LoginRequest{Email: fmt.Sprintf("rph%d.0@load.test", k), Password: seed.Password}))
		if err != nil {
			b.Fatal(err)
		}
		care := e.careClient(res.Msg.GetTokens().GetAccessToken())
		lists := []struct {
			name string
			page func() ([]string, error)
		}{
			{"cmrDue", func() ([]string, error) {
				res, err := care.ListPatientsDueForCmr(ctx, req(&mtmv1.ListPatientsDueForCmrRequest{PageSize: 25}))
				var ids []string
				for _, p := range res.Msg.GetPatients() {
					ids = append(ids, p.GetPatient().GetId())
				}
				return ids, err
			}},
			{"below80", func() ([]string, error) {
				res, err := care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{PageSize: 25}))
				var ids []string
				for _, p := range res.Msg.GetPatients() {
					ids = append(ids, p.GetPatient().GetId())
				}
				return ids, err
			}},
			{"followUps", func() ([]string, error) {
				res, err := care.ListOverdueFollowUps(ctx, req(&mtmv1.ListOverdueFollowUpsRequest{PageSize: 25}))
				var ids []string
				for _, f := range res.Msg.GetFollowUps() {
					ids = append(ids, f.GetPatient().GetId())
				}
				return ids, err
			}},
		}
		for _, l := range lists {
			b.Run(fmt.Sprintf("patients=%d/%s", size, l.name), func(b *testing.B) {
				var n int
				cpu := storetest.ReportCPU(b)
				for b.Loop() {
					ids, err := l.page()
					if err != nil || len(ids) != 25 {
						b.Fatalf("%d entries, %v", len(ids), err)
					}
					if n == 0 {
						for _, id := range ids {
							n += meds[id]
						}
					}
				}
				cpu()
				b.ReportMetric(float64(n)/25, "meds/entry")
			})
		}
	}
}

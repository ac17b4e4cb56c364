package seed_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/loadtest/seed"
)

func TestSeedBuildsASignedInPopulation(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 7, 55, 0, 0, time.UTC)
	pop, err := seed.Seed(ctx, st, seed.Options{Patients: 64, PatientsPerPharmacy: 32, Now: now, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(pop.Patients) != 64 || len(pop.Pharmacies) != 2 || len(pop.Pharmacists) != 4 || len(pop.Caregivers) != 16 {
		t.Fatalf("got %d patients, %d pharmacies, %d pharmacists, %d caregivers; want 64, 2, 4, 16",
			len(pop.Patients), len(pop.Pharmacies), len(pop.Pharmacists), len(pop.Caregivers))
	}
	if n := len(pop.WithMedicines(seed.MaxMedicines)); n != 4 {
		t.Errorf("%d patients with 20 medicines, want 4 (a sixteenth)", n)
	}
	for _, p := range pop.Patients {
		rec, err := st.GetPatient(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Medications) < seed.MinMedicines || len(rec.Medications) > seed.MaxMedicines || len(rec.Medications) != p.Medicines {
			t.Errorf("%s has %d medicines (population says %d)", p.ID, len(rec.Medications), p.Medicines)
		}
		if len(rec.Fills) < len(rec.Medications) || len(rec.ActionItems) < 2 || len(rec.Devices) != 1 {
			t.Errorf("%s: %d fills, %d action items, %d devices", p.ID, len(rec.Fills), len(rec.ActionItems), len(rec.Devices))
		}
		if rec.PharmacyID != p.PharmacyID {
			t.Errorf("%s in pharmacy %s, population says %s", p.ID, rec.PharmacyID, p.PharmacyID)
		}
	}
	// Every session is live: its refresh token rotates once.
	cg := pop.Caregivers[0]
	spent, err := st.RotateRefreshToken(ctx, auth.HashSecret(cg.Refresh), store.Rotation{Next: store.RefreshToken{Hash: "next", ExpiresAt: now.Add(time.Hour), CreatedAt: now}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if spent.Spent.Subject != cg.ID || spent.Spent.Role != store.RoleCaregiver {
		t.Errorf("caregiver session is %s/%s, want %s/caregiver", spent.Spent.Subject, spent.Spent.Role, cg.ID)
	}
	rec, err := st.GetPatient(ctx, cg.PatientID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Grants) != 1 || rec.Grants[0].CaregiverID != cg.ID || !rec.Grants[0].Allows(store.ScopeMessage, store.DateOf(now)) {
		t.Errorf("patient %s grants %+v, want one for %s with the message scope", cg.PatientID, rec.Grants, cg.ID)
	}
}

// The work-list phase needs the seeded patients on the pharmacy-wide work
// lists as the API would index them, and a second pharmacy of another
// size to compare with.
func TestSeedIndexesTheWorkListsOfTwoPharmacySizes(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 7, 55, 0, 0, time.UTC) // both fills of the low-adherence patients in this measurement year
	pop, err := seed.Seed(ctx, st, seed.Options{Patients: 80, PatientsPerPharmacy: 64, SmallPharmacy: 16, Now: now, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(pop.Pharmacies) != 2 {
		t.Fatalf("%d pharmacies, want 2 (64 patients and the small one of 16)", len(pop.Pharmacies))
	}
	today := store.DateOf(now)
	for k, want := range map[int]struct{ cmr, followUps int }{0: {64, 16}, 1: {16, 4}} {
		ph := pop.Pharmacies[k]
		below, err := st.ListWorklist(ctx, ph, store.WorklistBelowPDC, today, store.WorklistCursor{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		// A quarter have low adherence; those with a medicine in a PQA
		// class (most) are listed.
		if len(below) < want.cmr/8 || len(below) > want.cmr/4 {
			t.Errorf("pharmacy %s: %d of %d patients below 80%% PDC, want about a quarter", ph, len(below), want.cmr)
		}
		for l, n := range map[store.Worklist]int{store.WorklistCMRDue: want.cmr, store.WorklistFollowUp: want.followUps} {
			got, err := st.ListWorklist(ctx, ph, l, today, store.WorklistCursor{}, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Errorf("pharmacy %s, list %s: %d patients, want %d", ph, l, len(got), n)
			}
			for _, e := range got {
				if e.Patient.PharmacyID != ph {
					t.Errorf("pharmacy %s lists %s of %s", ph, e.Patient.ID, e.Patient.PharmacyID)
				}
			}
		}
	}
}

// Package seed fills a store with a load-test population through the
// storage contract: pharmacies with pharmacists, patients whose records look
// like real MTM patients' (5–20 medicines with directions and history,
// fills, dose schedules, allergies, an action plan, a phone), caregivers
// with grants, and a signed-in session (refresh token) for every principal,
// so that the load test starts where a pharmacy's morning starts: everyone
// already activated, opening the app.
package seed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
)

// Options size the population. Zero fields take the defaults.
type Options struct {
	Patients               int // default 10,000
	PatientsPerPharmacy    int // default 2,500
	PharmacistsPerPharmacy int // default 2
	// SmallPharmacy, when positive, puts the last SmallPharmacy patients
	// in one more pharmacy (the last of Population.Pharmacies), so that
	// a run can compare a pharmacy's work lists at two sizes.
	SmallPharmacy int
	// FollowUpEvery gives every n-th patient a follow-up that is overdue
	// (due three days before Now), on the pharmacy's overdue follow-ups
	// list (default 4).
	FollowUpEvery int
	// LowAdherenceEvery gives every n-th patient an earlier fill of each
	// medicine, two supplies before the first, so that those in a PQA
	// measure class are below 80% PDC this measurement year (when both
	// fills fall in it), on the adherence work list (default 4).
	LowAdherenceEvery int
	// CaregiverEvery gives every n-th patient a caregiver with every scope
	// (default 4).
	CaregiverEvery int
	// Workers is how many writers seed concurrently (default 8).
	Workers int
	// Now is the seeding instant; zero means time.Now().
	Now time.Time
	// RandomSeed makes the medication lists reproducible.
	RandomSeed uint64
	// Tag goes into every id and e-mail, so that several populations can
	// share a store (a server given by URL that outlives one run). It must
	// match [a-z0-9]*; "" for a fresh store.
	Tag string
	// Progress, when set, is called with the number of patients seeded so
	// far, from any goroutine.
	Progress func(done int64)
}

// MinMedicines and MaxMedicines bound a patient's medication list. Patient
// i has MinMedicines + i mod 16 of them, so a sixteenth of the population
// has exactly MaxMedicines.
const (
	MinMedicines = 5
	MaxMedicines = 20
)

// Patient is a seeded patient and the session the load test uses for them.
type Patient struct {
	ID         string
	PharmacyID string
	Medicines  int
	// Refresh is a live refresh token (plaintext) of the patient's session.
	Refresh string
	// TimeZone is the patient's IANA zone.
	TimeZone string
	// DoseSchedules are the ids of the patient's dose schedules; each has
	// an 8:00 local dose.
	DoseSchedules []string
}

// Account is a seeded pharmacist or caregiver and its session.
type Account struct {
	ID         string
	PharmacyID string // pharmacists
	PatientID  string // caregivers: the patient who granted access
	Refresh    string
}

// Population is what Seed created.
type Population struct {
	Pharmacies  []string
	Patients    []Patient
	Pharmacists []Account
	Caregivers  []Account
}

// WithMedicines returns the patients with exactly n medicines.
func (p Population) WithMedicines(n int) []Patient {
	var out []Patient
	for _, pt := range p.Patients {
		if pt.Medicines == n {
			out = append(out, pt)
		}
	}
	return out
}

// Password is the password of every seeded pharmacist and caregiver.
const Password = "load test password, not a secret"

func (o Options) withDefaults() Options {
	if o.Patients <= 0 {
		o.Patients = 10000
	}
	if o.PatientsPerPharmacy <= 0 {
		o.PatientsPerPharmacy = 2500
	}
	if o.PharmacistsPerPharmacy <= 0 {
		o.PharmacistsPerPharmacy = 2
	}
	if o.LowAdherenceEvery <= 0 {
		o.LowAdherenceEvery = 4
	}
	if o.FollowUpEvery <= 0 {
		o.FollowUpEvery = 4
	}
	if o.CaregiverEvery <= 0 {
		o.CaregiverEvery = 4
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// Seed creates the population in st. The store must be empty of ids with
// the "lt" prefixes it uses; it fails with the first store error.
func Seed(ctx context.Context, st store.Store, o Options) (Population, error) {
	o = o.withDefaults()
	for _, r := range o.Tag {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return Population{}, fmt.Errorf("seed: tag %q: want lower-case letters and digits", o.Tag)
		}
	}
	hash, err := auth.HashPassword(Password)
	if err != nil {
		return Population{}, fmt.Errorf("seed: %w", err)
	}
	if o.SmallPharmacy < 0 || o.SmallPharmacy >= o.Patients {
		return Population{}, fmt.Errorf("seed: small pharmacy of %d patients: want fewer than the %d patients", o.SmallPharmacy, o.Patients)
	}
	var pop Population
	large := o.Patients - o.SmallPharmacy // patients of the regular pharmacies
	nPharm := (large + o.PatientsPerPharmacy - 1) / o.PatientsPerPharmacy
	if o.SmallPharmacy > 0 {
		nPharm++
	}
	pharmacyOf := func(i int) string {
		if i >= large {
			return pop.Pharmacies[nPharm-1]
		}
		return pop.Pharmacies[i/o.PatientsPerPharmacy]
	}
	for ph := range nPharm {
		id := fmt.Sprintf("ph_lt%s%03d", o.Tag, ph)
		if err := st.CreatePharmacy(ctx, store.Pharmacy{ID: id, Name: fmt.Sprintf("Load Test Pharmacy #%d", ph+1), CreatedAt: o.Now}); err != nil {
			return Population{}, fmt.Errorf("seed: pharmacy: %w", err)
		}
		pop.Pharmacies = append(pop.Pharmacies, id)
		for k := range o.PharmacistsPerPharmacy {
			a := store.Account{
				ID: fmt.Sprintf("ac_lt%s_rph%03d_%d", o.Tag, ph, k), Email: fmt.Sprintf("rph%s%d.%d@load.test", o.Tag, ph, k),
				DisplayName: fmt.Sprintf("Pharmacist %d-%d, PharmD", ph, k), PasswordHash: hash,
				Role: store.RolePharmacist, PharmacyID: id, CreatedAt: o.Now,
			}
			if k == 0 {
				a.Role = store.RolePharmacyAdmin
			}
			if err := st.CreateAccount(ctx, a); err != nil {
				return Population{}, fmt.Errorf("seed: pharmacist: %w", err)
			}
			tok, err := session(ctx, st, a.ID, a.Role, o.Now)
			if err != nil {
				return Population{}, err
			}
			pop.Pharmacists = append(pop.Pharmacists, Account{ID: a.ID, PharmacyID: id, Refresh: tok})
		}
	}

	pop.Patients = make([]Patient, o.Patients)
	caregivers := make([]*Account, o.Patients)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, o.Workers)
	for w := range o.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= o.Patients {
					return
				}
				pt, cg, err := seedPatient(ctx, st, o, i, pharmacyOf(i), hash)
				if err != nil {
					errs[w] = err
					return
				}
				pop.Patients[i], caregivers[i] = pt, cg
				if n := done.Add(1); o.Progress != nil {
					o.Progress(n)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return Population{}, fmt.Errorf("seed: %w", err)
	}
	for _, cg := range caregivers {
		if cg != nil {
			pop.Caregivers = append(pop.Caregivers, *cg)
		}
	}
	return pop, nil
}

// session starts a refresh-token family for a principal, as a sign-in
// would, and returns the plaintext token.
func session(ctx context.Context, st store.Store, subject string, role store.Role, now time.Time) (string, error) {
	tok, err := auth.NewRefreshToken()
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	fam, err := auth.NewID("sf")
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	if err := st.CreateRefreshToken(ctx, store.RefreshToken{
		Hash: auth.HashSecret(tok), FamilyID: fam, Subject: subject, Role: role,
		ExpiresAt: now.Add(30 * 24 * time.Hour), CreatedAt: now,
	}); err != nil {
		return "", fmt.Errorf("seed: session: %w", err)
	}
	return tok, nil
}

// seedPatient creates patient i, its session and, for every
// CaregiverEvery-th patient, a caregiver account with a grant.
func seedPatient(ctx context.Context, st store.Store, o Options, i int, pharmacyID, passwordHash string) (Patient, *Account, error) {
	rng := rand.New(rand.NewPCG(o.RandomSeed, uint64(i)))
	rec := record(rng, PatientID(o.Tag, i), i, pharmacyID, o.Now)
	var cg *Account
	var cgAccount store.Account
	if i%o.CaregiverEvery == 0 {
		cgAccount = store.Account{
			ID: fmt.Sprintf("ac_lt%s_cg%06d", o.Tag, i), Email: fmt.Sprintf("caregiver%s%d@load.test", o.Tag, i),
			DisplayName: "Family caregiver " + fmt.Sprint(i), PasswordHash: passwordHash,
			Role: store.RoleCaregiver, CreatedAt: o.Now, PatientIDs: []string{rec.ID},
		}
		rec.Grants = []store.Grant{{
			ID: fmt.Sprintf("gr_lt%s%06d", o.Tag, i), CaregiverID: cgAccount.ID, CaregiverName: cgAccount.DisplayName,
			Scopes:    []store.Scope{store.ScopeViewMedicines, store.ScopeViewPlan, store.ScopeMessage, store.ScopeMissedDoseAlerts},
			CreatedAt: o.Now,
		}}
	}
	if i%o.LowAdherenceEvery == 1%o.LowAdherenceEvery {
		for _, f := range rec.Fills {
			prev := f
			prev.ID, prev.FilledOn = f.ID+"_prev", f.FilledOn.AddDays(-2*f.DaysSupply)
			rec.Fills = append(rec.Fills, prev)
		}
	}
	if i%o.FollowUpEvery == o.FollowUpEvery-1 {
		rec.FollowUps = []store.FollowUp{{ID: fmt.Sprintf("fu_%s_1", rec.ID), DueAt: o.Now.Add(-72 * time.Hour),
			ActionItemID: rec.ActionItems[0].ID, CreatedBy: "ac_lt_rph000_0", CreatedAt: o.Now.Add(-30 * 24 * time.Hour)}}
	}
	rec.Worklist = clinical.WorklistDates(rec, o.Now) // indexed on the work lists as the API would
	if err := st.CreatePatient(ctx, rec); err != nil {
		return Patient{}, nil, fmt.Errorf("patient %s: %w", rec.ID, err)
	}
	tok, err := session(ctx, st, rec.ID, store.RolePatient, o.Now)
	if err != nil {
		return Patient{}, nil, err
	}
	if cgAccount.ID != "" {
		if err := st.CreateAccount(ctx, cgAccount); err != nil {
			return Patient{}, nil, fmt.Errorf("caregiver %s: %w", cgAccount.ID, err)
		}
		ctok, err := session(ctx, st, cgAccount.ID, store.RoleCaregiver, o.Now)
		if err != nil {
			return Patient{}, nil, err
		}
		cg = &Account{ID: cgAccount.ID, PatientID: rec.ID, Refresh: ctok}
	}
	var schedules []string
	for _, s := range rec.DoseSchedules {
		schedules = append(schedules, s.ID)
	}
	return Patient{ID: rec.ID, PharmacyID: pharmacyID, Medicines: len(rec.Medications), Refresh: tok,
		TimeZone: rec.TimeZone, DoseSchedules: schedules}, cg, nil
}

// PatientID is the id of seeded patient i of the population with this tag.
func PatientID(tag string, i int) string { return fmt.Sprintf("pt_lt%s%06d", tag, i) }

// record builds patient i's record: MinMedicines + i mod 16 medicines drawn
// from the catalogue without repeats, some stopped, each with a fill.
func record(rng *rand.Rand, id string, i int, pharmacyID string, now time.Time) store.Patient {
	today := store.DateOf(now)
	p := store.Patient{
		ID: id, PharmacyID: pharmacyID,
		GivenName: givenNames[i%len(givenNames)], FamilyName: familyNames[(i/len(givenNames))%len(familyNames)],
		DateOfBirth:      store.Date{Year: 1935 + rng.IntN(40), Month: time.Month(1 + rng.IntN(12)), Day: 1 + rng.IntN(28)},
		TimeZone:         zones[i%len(zones)],
		QuietHours:       store.QuietHours{StartMinute: 22 * 60, EndMinute: 7 * 60},
		OtherInformation: "Uses a weekly pill organizer. Prefers large-print labels.",
		FollowUpPlan:     "Telephone follow-up in 4 weeks; next comprehensive review in 12 months.",
		Questions:        "Can I take my calcium supplement at lunch?",
		ActivatedAt:      now.Add(-24 * time.Hour),
		CreatedAt:        now.Add(-30 * 24 * time.Hour),
		UpdatedAt:        now,
	}
	n := MinMedicines + i%(MaxMedicines-MinMedicines+1)
	for k, d := range rng.Perm(len(catalogue))[:n] {
		drug := catalogue[d]
		started := today.AddDays(-30 - rng.IntN(2000))
		m := store.Medication{
			ID: fmt.Sprintf("md_%s_%02d", id, k), Name: drug.name, Strength: drug.strength, RxCUI: drug.rxcui,
			HowIUseIt: drug.how, WhyIUseIt: drug.why, Prescriber: prescribers[rng.IntN(len(prescribers))],
			StartedOn: started, UpdatedAt: now, UpdatedBy: "ac_lt_rph000_0", Version: 1,
		}
		if rng.IntN(3) == 0 {
			m.Version = 2
			m.History = []store.MedicationChange{{At: now.Add(-48 * time.Hour), By: "ac_lt_rph000_0", Reason: "Dose adjusted per prescriber after lab results"}}
		}
		if k > 0 && rng.IntN(8) == 0 {
			m.StoppedOn, m.WhyStopped = today.AddDays(-rng.IntN(25)), "Stopped by prescriber after dizziness"
		}
		p.Medications = append(p.Medications, m)
		supply := []int{30, 90}[rng.IntN(2)]
		p.Fills = append(p.Fills, store.Fill{
			ID: fmt.Sprintf("fl_%s_%02d", id, k), MedicationID: m.ID,
			FilledOn: today.AddDays(-rng.IntN(supply)), DaysSupply: supply, RecordedAt: now,
		})
		if m.Active() && drug.dosesPerDay > 0 {
			times := [][]int{nil, {8 * 60}, {8 * 60, 20 * 60}, {8 * 60, 14 * 60, 20 * 60}}[drug.dosesPerDay]
			p.DoseSchedules = append(p.DoseSchedules, store.DoseSchedule{
				ID: fmt.Sprintf("ds_%s_%02d", id, k), MedicationID: m.ID, TimesOfDay: times, StartOn: started,
			})
		}
	}
	p.Allergies = []store.Allergy{{ID: "al_" + id + "_1", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives", RecordedAt: now}}
	if rng.IntN(2) == 0 {
		p.Allergies = append(p.Allergies, store.Allergy{ID: "al_" + id + "_2", Kind: store.KindSideEffect, Substance: "Metformin immediate-release", Reaction: "Upset stomach", RecordedAt: now})
	}
	for k := range 2 + rng.IntN(3) {
		a := actionItems[(i+k)%len(actionItems)]
		p.ActionItems = append(p.ActionItems, store.ActionItem{
			ID: fmt.Sprintf("ai_%s_%d", id, k), WhatWeTalkedAbout: a.talked, WhatINeedToDo: a.todo,
			CreatedAt: now, UpdatedAt: now, Version: 1,
		})
	}
	p.Devices = []store.Device{{
		ID: "dv_" + id, FCMToken: "load-test-token-" + id, Platform: "android",
		AppVersion: "2.4.1 (20417)", Locale: "en-US", RegisteredAt: now.Add(-24 * time.Hour),
	}}
	return p
}

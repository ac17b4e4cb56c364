// Package demo seeds a demonstration pharmacy, pharmacist and patient with a
// realistic medication list and action plan, so that a fresh server can be
// tried without a mobile app. It is only used when mtmd runs with --demo.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
)

// Fixed identities of the demo data, so that seeding twice is harmless.
const (
	PharmacyID         = "ph_demo"
	PharmacistID       = "ac_demo_pharmacist"
	PharmacistEmail    = "pharmacist@demo.mtm.test"
	PharmacistPassword = "demo-pharmacist-password"
	PatientID          = "pt_demo"
	PatientBirthDate   = "1948-03-12"
)

// Credentials are what a person needs to try the demo.
type Credentials struct {
	PharmacistEmail    string
	PharmacistPassword string
	PatientID          string
	PatientBirthDate   string
	ActivationCode     string
	ActivationExpires  time.Time
}

// Seed creates the demo pharmacy, pharmacist and patient unless they exist,
// and always issues a fresh activation code for the demo patient.
func Seed(ctx context.Context, st store.Store, now time.Time) (Credentials, error) {
	if err := seedOnce(ctx, st, now); err != nil {
		return Credentials{}, fmt.Errorf("demo.Seed: %w", err)
	}
	code, err := auth.NewActivationCode()
	if err != nil {
		return Credentials{}, fmt.Errorf("demo.Seed: %w", err)
	}
	ac := store.ActivationCode{
		CodeHash:  auth.HashSecret(auth.NormalizeActivationCode(code)),
		PatientID: PatientID,
		ExpiresAt: now.Add(72 * time.Hour),
		CreatedAt: now,
	}
	if err := st.PutActivationCode(ctx, ac); err != nil {
		return Credentials{}, fmt.Errorf("demo.Seed: %w", err)
	}
	return Credentials{
		PharmacistEmail:    PharmacistEmail,
		PharmacistPassword: PharmacistPassword,
		PatientID:          PatientID,
		PatientBirthDate:   PatientBirthDate,
		ActivationCode:     code,
		ActivationExpires:  ac.ExpiresAt,
	}, nil
}

func seedOnce(ctx context.Context, st store.Store, now time.Time) error {
	err := st.CreatePharmacy(ctx, store.Pharmacy{ID: PharmacyID, Name: "Riverside Community Pharmacy (demo)", CreatedAt: now})
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil
	}
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(PharmacistPassword)
	if err != nil {
		return err
	}
	if err := st.CreateAccount(ctx, store.Account{
		ID: PharmacistID, Email: PharmacistEmail, DisplayName: "Dana Ortiz, PharmD",
		PasswordHash: hash, Role: store.RolePharmacyAdmin, PharmacyID: PharmacyID, CreatedAt: now,
	}); err != nil {
		return err
	}
	pt := patient(now)
	pt.Worklist = clinical.WorklistDates(pt, now) // on the pharmacy's work lists like any patient
	return st.CreatePatient(ctx, pt)
}

func date(s string) store.Date {
	d, err := store.ParseDate(s)
	if err != nil {
		panic("demo: bad literal date " + s)
	}
	return d
}

// patient is Margaret, 78, with atrial fibrillation, type 2 diabetes,
// hypertension and hypothyroidism: the kind of list an MTM review is for.
func patient(now time.Time) store.Patient {
	med := func(id, name, strength, rxcui, how, why, prescriber, started string) store.Medication {
		return store.Medication{ID: id, Name: name, Strength: strength, RxCUI: rxcui, HowIUseIt: how, WhyIUseIt: why,
			Prescriber: prescriber, StartedOn: date(started), UpdatedAt: now, UpdatedBy: PharmacistID, Version: 1}
	}
	omeprazole := med("md_demo_omeprazole", "Omeprazole", "20 mg capsule", "198053", "1 capsule by mouth before breakfast", "Heartburn", "Dr. Patel", "2023-05-02")
	omeprazole.StoppedOn, omeprazole.WhyStopped = date("2026-06-15"), "Heartburn resolved; long-term use not needed"
	return store.Patient{
		ID: PatientID, PharmacyID: PharmacyID, GivenName: "Margaret", FamilyName: "Chen",
		DateOfBirth: date(PatientBirthDate), TimeZone: "America/Chicago",
		QuietHours: store.QuietHours{StartMinute: 22 * 60, EndMinute: 7 * 60},
		Medications: []store.Medication{
			med("md_demo_apixaban", "Apixaban", "5 mg tablet", "1364445", "1 tablet by mouth twice a day", "Prevent stroke (atrial fibrillation)", "Dr. Alvarez", "2024-09-10"),
			med("md_demo_metformin", "Metformin", "500 mg tablet", "861007", "1 tablet by mouth twice a day with meals", "Diabetes", "Dr. Patel", "2019-02-20"),
			med("md_demo_lisinopril", "Lisinopril", "10 mg tablet", "314076", "1 tablet by mouth every morning", "Blood pressure", "Dr. Patel", "2020-11-03"),
			med("md_demo_atorvastatin", "Atorvastatin", "40 mg tablet", "617311", "1 tablet by mouth at bedtime", "Cholesterol", "Dr. Patel", "2020-11-03"),
			med("md_demo_levothyroxine", "Levothyroxine", "75 mcg tablet", "966224", "1 tablet by mouth on an empty stomach, 30 minutes before breakfast", "Thyroid", "Dr. Nguyen", "2018-07-14"),
			omeprazole,
		},
		Allergies: []store.Allergy{
			{ID: "al_demo_penicillin", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives", RecordedAt: now},
			{ID: "al_demo_metformin", Kind: store.KindSideEffect, Substance: "Metformin (immediate release)", Reaction: "Upset stomach when taken without food", RecordedAt: now},
		},
		OtherInformation: "Uses a weekly pill organizer filled by her daughter on Sundays.",
		Fills: []store.Fill{
			{ID: "fl_demo_1", MedicationID: "md_demo_apixaban", FilledOn: store.DateOf(now).AddDays(-25), DaysSupply: 30, RecordedAt: now},
			{ID: "fl_demo_2", MedicationID: "md_demo_metformin", FilledOn: store.DateOf(now).AddDays(-60), DaysSupply: 90, RecordedAt: now},
		},
		ActionItems: []store.ActionItem{
			{ID: "ai_demo_bleeding", WhatWeTalkedAbout: "Apixaban raises the risk of bleeding; ibuprofen and naproxen raise it further.",
				WhatINeedToDo: "Use acetaminophen (Tylenol) for pain instead of ibuprofen or naproxen. Call the pharmacy before starting any new pain reliever.",
				CreatedAt:     now, UpdatedAt: now, Version: 1},
			{ID: "ai_demo_levothyroxine", WhatWeTalkedAbout: "Levothyroxine works best on an empty stomach, apart from calcium and iron.",
				WhatINeedToDo: "Take levothyroxine when you wake up, 30 minutes before breakfast and 4 hours apart from calcium supplements.",
				CreatedAt:     now, UpdatedAt: now, Version: 1},
		},
		FollowUpPlan: "Telephone follow-up in 4 weeks to check on bruising and blood sugar readings.",
		Questions:    "Can I take my calcium supplement at lunch?",
		CreatedAt:    now, UpdatedAt: now,
	}
}

// PrintInstructions writes how to try the demo against baseURL with curl.
func PrintInstructions(w io.Writer, baseURL string, c Credentials) {
	fmt.Fprintf(w, `
Demo data is ready.
  pharmacist (pharmacy admin): %s / %s
  patient: %s, date of birth %s, activation code %s (valid until %s)

Try it (Connect JSON over HTTP/1.1):
  curl -s -H 'Content-Type: application/json' %s/mtm.v1.AuthService/ActivatePatient \
    -d '{"activationCode":"%s","dateOfBirth":"%s","deviceName":"demo phone"}'
  # then, with the accessToken from that answer:
  curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
    %s/mtm.v1.PatientService/GetMedicationList -d '{"patientId":"%s"}'
`, c.PharmacistEmail, c.PharmacistPassword, c.PatientID, c.PatientBirthDate, c.ActivationCode,
		c.ActivationExpires.Format(time.RFC3339), baseURL, c.ActivationCode, c.PatientBirthDate, baseURL, c.PatientID)
}

package cmspdf_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/export/cmspdf"
	"github.com/mtmapp/mtm/backend/store"
)

func date(s string) store.Date {
	d, err := store.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// pdfText extracts the document's text with pdftotext (Debian's
// poppler-utils) and collapses white space, so that wrapped lines compare
// as one.
func pdfText(t *testing.T, doc []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		t.Fatal("pdftotext not found: install poppler-utils (.ci/run does)")
	}
	path := filepath.Join(t.TempDir(), "record.pdf")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

func patient() store.Patient {
	return store.Patient{
		ID: "pt_1", PharmacyID: "ph_1", GivenName: "Olive", FamilyName: "Oyl", DateOfBirth: date("1950-06-01"), TimeZone: "America/Chicago",
		Medications: []store.Medication{
			{ID: "md_1", Name: "Simvastatin", Strength: "20 mg", HowIUseIt: "1 tablet at bedtime", WhyIUseIt: "Cholesterol", Prescriber: "Dr. Lee",
				StartedOn: date("2023-05-01"), StoppedOn: date("2026-02-01"), WhyStopped: "Muscle aches"},
			{ID: "md_2", Name: "Metformin", Strength: "500 mg", HowIUseIt: "1 tablet twice a day with meals", WhyIUseIt: "Diabetes",
				Prescriber: "Dr. Rivera", StartedOn: date("2024-01-15")},
		},
		Allergies:        []store.Allergy{{ID: "al_1", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives"}},
		OtherInformation: "Uses a pill organizer",
		ActionItems: []store.ActionItem{{ID: "ai_1", WhatWeTalkedAbout: "Blood sugar after dinner is high", WhatINeedToDo: "Walk 20 minutes after dinner",
			Progress: []store.Progress{{WhatIDid: "Walked 4 evenings", DoneOn: date("2026-03-10")}}}},
		FollowUpPlan: "Call the pharmacy in two weeks",
		Questions:    "Can I take ibuprofen for back pain?",
		SelfReports: []store.SelfReport{
			{ID: "sr_1", Kind: "supplement", Name: "Fish oil", HowIUseIt: "1 capsule daily", Status: "pending"},
			{ID: "sr_2", Kind: "herbal", Name: "Ginkgo", Status: "accepted", MedicationID: "md_3"},
		},
	}
}

// The standard's headings and labels as the patient reads them, in English.
var englishLabels = []string{"What we talked about:", "What I need to do:", "What I did and when I did it:",
	"My follow-up plan (add notes about next steps):", "Questions I want to ask (include topics about medications or therapy):",
	"Allergies or side effects:", "Medication:", "How I use it:", "When I use it:", "Why I use it:", "Prescriber:",
	"Date I started using it:", "Date I stopped using it:", "Why I stopped using it:", "Other Information:"}

func TestRenderHasEveryHeadingAndRow(t *testing.T) {
	p := patient()
	p.DoseSchedules = []store.DoseSchedule{{ID: "ds_1", MedicationID: "md_2", TimesOfDay: []int{8 * 60, 20*60 + 30}}}
	p.FollowUps = []store.FollowUp{{ID: "fu_1", DueAt: time.Date(2026, 4, 2, 15, 0, 0, 0, time.UTC)}}
	p.Address = "1200 W Maple Ave\nSpringfield, IL 62704"
	p.PrimaryCare = store.Contact{Name: "Dr. Amara Okafor", Phone: "217-555-0110"}
	p.EmergencyContact = store.Contact{Name: "Bluto Oyl", Relationship: "son", Phone: "217-555-0199"}
	p.Medications[1].PrescriberPhone = "217-555-0123"
	pharmacy := store.Pharmacy{Name: "Main Street Pharmacy", Phone: "217-555-0100", TTY: "711", Hours: "Mon-Fri 9 AM-6 PM",
		Address: "100 Main Street\nSpringfield, IL 62701", PlanName: "Prairie Health Part D"}
	in := cmspdf.Input{Patient: p, Pharmacy: pharmacy, PharmacistName: "Pat Quinn, PharmD",
		ReviewedOn: date("2026-03-14"), Prepared: date("2026-03-15")}
	doc, err := cmspdf.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(doc, []byte("%PDF-")) {
		t.Fatal("not a PDF")
	}
	text := pdfText(t, doc)
	want := []struct{ what, text string }{
		{"cover letter salutation", "Dear Olive Oyl:"},
		{"cover letter review date", "Thank you for talking with me on March 14, 2026 about your health and medications."},
		{"cover letter: what it includes", "This letter includes a to-do list (Recommended To-Do List) and a medication list (Medication List)."},
		{"cover letter: hospital bullet", "Take your medication list with you if you go to the hospital or emergency room."},
		{"cover letter signature", "Pat Quinn, PharmD"},
		{"letterhead address", "100 Main Street Springfield, IL 62701"},
		{"inside address", "Olive Oyl 1200 W Maple Ave Springfield, IL 62704"},
		{"contact line", "please call Pat Quinn, PharmD at Main Street Pharmacy at 217-555-0100. Hours: Mon-Fri 9 AM-6 PM. TTY: 711."},
		{"plan", "Plan: Prairie Health Part D"},
		{"primary care", "Primary care provider: Dr. Amara Okafor, 217-555-0110"},
		{"emergency contact", "Emergency contact: Bluto Oyl (son), 217-555-0199"},
		{"prescriber contact", "Dr. Rivera, 217-555-0123"},
		{"to-do list title", "Recommended To-Do List for Olive Oyl, DOB: 06/01/1950"},
		{"medication list title", "Medication List for Olive Oyl, DOB: 06/01/1950"},
		{"date prepared", "DATE PREPARED: 03/15/2026"},
		{"last review", "Last medication review: 03/14/2026, with Pat Quinn, PharmD"},
		{"MAP item", "Blood sugar after dinner is high"},
		{"MAP step", "Walk 20 minutes after dinner"},
		{"MAP progress", "Walked 4 evenings (03/10/2026)"},
		{"follow-up appointment", "Follow-up with your pharmacist: 04/02/2026"},
		{"follow-up plan", "Call the pharmacy in two weeks"},
		{"questions", "Can I take ibuprofen for back pain?"},
		{"allergy", "Penicillin: Hives"},
		{"current medicine", "Metformin 500 mg"},
		{"its use", "1 tablet twice a day with meals"},
		{"its schedule", "8:00 AM, 8:30 PM"},
		{"its reason", "Diabetes"},
		{"its prescriber", "Dr. Rivera"},
		{"its start", "01/15/2024"},
		{"stopped section", "Medications I stopped using"},
		{"stopped medicine", "Simvastatin 20 mg"},
		{"stop date", "02/01/2026"},
		{"stop reason", "Muscle aches"},
		{"other information", "Uses a pill organizer"},
		{"pending self-report", "Fish oil - 1 capsule daily"},
		{"pending heading", "Medicines you told us about (reported by you, pending pharmacist review):"},
		{"safe disposal", "Safe disposal:"},
	}
	for _, h := range englishLabels {
		want = append(want, struct{ what, text string }{"heading", h})
	}
	for _, w := range want {
		if !strings.Contains(text, w.text) {
			t.Errorf("%s %q missing from the PDF", w.what, w.text)
		}
	}
	// Current medicines come before stopped ones, which sit under their own
	// heading after the blank box.
	i, j, k := strings.Index(text, "Metformin"), strings.Index(text, "Medications I stopped using"), strings.Index(text, "Simvastatin")
	if i < 0 || j < 0 || k < 0 || !(i < j && j < k) {
		t.Errorf("want current Metformin (at %d), then the stopped heading (at %d), then stopped Simvastatin (at %d)", i, j, k)
	}
	// The pending self-report is not a PML row: it appears only after the
	// heading that says it is pending review, never beside "Medication:".
	if i, j := strings.Index(text, "pending pharmacist review"), strings.Index(text, "Fish oil"); j < i {
		t.Errorf("Fish oil appears before the pending-review heading")
	}
	if strings.Contains(text, "Medication: Fish oil") {
		t.Error("a pending self-reported medicine is printed as a verified PML row")
	}
	if t.Failed() {
		t.Logf("PDF text: %s", text)
	}
}

// TestRenderInSpanish: a patient who prefers Spanish gets the letter, the
// headings and the fixed texts in Spanish; the record's own text is as
// written.
func TestRenderInSpanish(t *testing.T) {
	for _, lang := range []string{"es", "es-US", "es-419"} {
		t.Run(lang, func(t *testing.T) {
			doc, err := cmspdf.Render(cmspdf.Input{Patient: patient(), Pharmacy: store.Pharmacy{Name: "Farmacia Central"}, PharmacistName: "Pat Quinn",
				ReviewedOn: date("2026-03-14"), Prepared: date("2026-03-15"), Language: lang})
			if err != nil {
				t.Fatal(err)
			}
			text := pdfText(t, doc)
			for _, w := range []string{"Estimado/a Olive Oyl:", "el 14 de marzo de 2026", "Lista de tareas recomendadas para Olive Oyl",
				"Lista de medicamentos para Olive Oyl", "FECHA DE PREPARACIÓN: 03/15/2026", "De qué hablamos:", "Lo que necesito hacer:",
				"Cómo lo uso:", "Por qué lo uso:", "Medicamentos que dejé de usar", "Otra información:", "Metformin 500 mg", "Penicillin: Hives"} {
				if !strings.Contains(text, w) {
					t.Errorf("%q missing from the Spanish PDF", w)
				}
			}
			for _, en := range []string{"Dear ", "What we talked about:", "How I use it:"} {
				if strings.Contains(text, en) {
					t.Errorf("English %q in the Spanish PDF", en)
				}
			}
		})
	}
	// An unknown or unsupported language gets English.
	doc, err := cmspdf.Render(cmspdf.Input{Patient: patient(), Prepared: date("2026-03-15"), Language: "x-klingon"})
	if err != nil {
		t.Fatal(err)
	}
	if text := pdfText(t, doc); !strings.Contains(text, "Dear Olive Oyl:") {
		t.Error("an unsupported language did not fall back to English")
	}
	if got := cmspdf.Languages(); !slices.Equal(got, []string{"en", "es"}) {
		t.Errorf("Languages() = %v", got)
	}
}

func TestRenderEmptyRecordKeepsTheForm(t *testing.T) {
	doc, err := cmspdf.Render(cmspdf.Input{Patient: store.Patient{GivenName: "New", FamilyName: "Patient"}, Prepared: date("2026-03-15")})
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, doc)
	for _, h := range []string{"Recommended To-Do List for New Patient", "Medication List for New Patient", "My follow-up plan",
		"Questions I want to ask", "Allergies or side effects:", "Medication:", "Other Information:", "No action items"} {
		if !strings.Contains(text, h) {
			t.Errorf("%q missing from an empty record's PDF", h)
		}
	}
	for _, h := range []string{"pending pharmacist review", "Medications I stopped using", "Last medication review"} {
		if strings.Contains(text, h) {
			t.Errorf("%q shows with nothing to show", h)
		}
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	in := cmspdf.Input{Patient: patient(), Pharmacy: store.Pharmacy{Name: "Main"}, Prepared: date("2026-03-15")}
	a, err := cmspdf.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cmspdf.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the same record rendered twice gives different bytes")
	}
}

func TestPreparedOn(t *testing.T) {
	at := time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC) // 22:00 on the 14th in Chicago
	if got := cmspdf.PreparedOn(store.Patient{TimeZone: "America/Chicago"}, at); got.String() != "2026-03-14" {
		t.Errorf("PreparedOn = %s, want the patient's local date 2026-03-14", got)
	}
	if got := cmspdf.PreparedOn(store.Patient{}, at); got.String() != "2026-03-15" {
		t.Errorf("PreparedOn without a zone = %s, want 2026-03-15", got)
	}
}

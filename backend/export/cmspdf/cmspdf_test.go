package cmspdf_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
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

func TestRenderHasEveryHeadingAndRow(t *testing.T) {
	in := cmspdf.Input{Patient: patient(), PharmacyName: "Main Street Pharmacy", PharmacistName: "Pat Quinn, PharmD",
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
		{"cover letter signature", "Pat Quinn, PharmD"},
		{"MAP title", "Medication Action Plan for Olive Oyl, DOB: 1950-06-01"},
		{"PML title", "Personal Medication List For Olive Oyl, DOB: 1950-06-01"},
		{"date prepared", "DATE PREPARED: 2026-03-15"},
		{"MAP item", "Blood sugar after dinner is high"},
		{"MAP step", "Walk 20 minutes after dinner"},
		{"MAP progress", "Walked 4 evenings (2026-03-10)"},
		{"follow-up plan", "Call the pharmacy in two weeks"},
		{"questions", "Can I take ibuprofen for back pain?"},
		{"allergy", "Penicillin: Hives"},
		{"current medicine", "Metformin 500 mg"},
		{"its use", "1 tablet twice a day with meals"},
		{"its reason", "Diabetes"},
		{"its prescriber", "Dr. Rivera"},
		{"its start", "2024-01-15"},
		{"stopped medicine", "Simvastatin 20 mg"},
		{"stop date", "2026-02-01"},
		{"stop reason", "Muscle aches"},
		{"other information", "Uses a pill organizer"},
		{"pending self-report", "Fish oil - 1 capsule daily"},
	}
	for _, h := range []string{cmspdf.HeadingTalkedAbout, cmspdf.HeadingNeedToDo, cmspdf.HeadingDid, cmspdf.HeadingFollowUpPlan, cmspdf.HeadingQuestions,
		cmspdf.HeadingAllergies, cmspdf.HeadingMedication, cmspdf.HeadingHowIUse, cmspdf.HeadingWhyIUse, cmspdf.HeadingPrescriber,
		cmspdf.HeadingStarted, cmspdf.HeadingStopped, cmspdf.HeadingWhyStopped, cmspdf.HeadingOtherInfo, cmspdf.HeadingPending} {
		want = append(want, struct{ what, text string }{"heading", h})
	}
	for _, w := range want {
		if !strings.Contains(text, w.text) {
			t.Errorf("%s %q missing from the PDF", w.what, w.text)
		}
	}
	// Current medicines come before stopped ones.
	if i, j := strings.Index(text, "Metformin"), strings.Index(text, "Simvastatin"); i < 0 || j < 0 || i > j {
		t.Errorf("current Metformin (at %d) must be listed before stopped Simvastatin (at %d)", i, j)
	}
	// The pending self-report is not a PML row: it appears only after the
	// heading that says it is pending review, never beside "Medication:".
	if i, j := strings.Index(text, cmspdf.HeadingPending), strings.Index(text, "Fish oil"); j < i {
		t.Errorf("Fish oil appears before the pending-review heading")
	}
	if strings.Contains(text, cmspdf.HeadingMedication+" Fish oil") {
		t.Error("a pending self-reported medicine is printed as a verified PML row")
	}
	if t.Failed() {
		t.Logf("PDF text: %s", text)
	}
}

func TestRenderEmptyRecordKeepsTheForm(t *testing.T) {
	doc, err := cmspdf.Render(cmspdf.Input{Patient: store.Patient{GivenName: "New", FamilyName: "Patient"}, Prepared: date("2026-03-15")})
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, doc)
	for _, h := range []string{"Medication Action Plan for New Patient", "Personal Medication List For New Patient", cmspdf.HeadingFollowUpPlan,
		cmspdf.HeadingQuestions, cmspdf.HeadingAllergies, cmspdf.HeadingMedication, cmspdf.HeadingOtherInfo, "No action items"} {
		if !strings.Contains(text, h) {
			t.Errorf("%q missing from an empty record's PDF", h)
		}
	}
	if strings.Contains(text, cmspdf.HeadingPending) {
		t.Error("the pending-review heading shows with nothing pending")
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	in := cmspdf.Input{Patient: patient(), PharmacyName: "Main", Prepared: date("2026-03-15")}
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

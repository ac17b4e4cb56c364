// Package cmspdf renders a patient's record in the CMS Part D Medication
// Therapy Management Standardized Format as a PDF: the cover letter, the
// Medication Action Plan and the Personal Medication List, with the
// headings and the per-item fields the standard prescribes.
//
// Every PML row is a box with the standard's fields (Medication, How I use
// it, Why I use it, Prescriber, Date I started using it, Date I stopped
// using it, Why I stopped using it); current medicines come first, then
// stopped ones. Medicines the patient reported themselves that a
// pharmacist has not reviewed yet are listed after the boxes under their
// own heading, never as PML rows. Text is set in the PDF core fonts
// (Windows-1252): characters outside that set print as '?'.
package cmspdf

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
)

// ContentType is the media type of the rendered document.
const ContentType = "application/pdf"

// Headings of the standardized format, in the order they appear.
const (
	HeadingMAP          = "Medication Action Plan"
	HeadingPML          = "Personal Medication List"
	HeadingTalkedAbout  = "What we talked about:"
	HeadingNeedToDo     = "What I need to do:"
	HeadingDid          = "What I did and when I did it:"
	HeadingFollowUpPlan = "My follow-up plan (add notes about next steps):"
	HeadingQuestions    = "Questions I want to ask (include topics about medications or therapy):"
	HeadingAllergies    = "Allergies or side effects:"
	HeadingMedication   = "Medication:"
	HeadingHowIUse      = "How I use it:"
	HeadingWhyIUse      = "Why I use it:"
	HeadingPrescriber   = "Prescriber:"
	HeadingStarted      = "Date I started using it:"
	HeadingStopped      = "Date I stopped using it:"
	HeadingWhyStopped   = "Why I stopped using it:"
	HeadingOtherInfo    = "Other Information:"
	HeadingPending      = "Medicines you told us about (reported by you, pending pharmacist review):"
)

// Input is what goes into the document.
type Input struct {
	Patient        store.Patient
	PharmacyName   string
	PharmacistName string // who signs the letter; may be empty
	// ReviewedOn is the date of the review the letter follows (the last
	// CMR); zero leaves the sentence without a date.
	ReviewedOn store.Date
	// Prepared is the "date prepared" printed on the MAP and PML.
	Prepared store.Date
}

const (
	pageMargin = 18.0
	lineH      = 5.5
	labelW     = 58.0
)

// Render returns the PDF. It fails only if the PDF cannot be produced.
func Render(in Input) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "Letter", "")
	pdf.SetMargins(pageMargin, pageMargin, pageMargin)
	pdf.SetAutoPageBreak(true, pageMargin)
	stamp := in.Prepared.Time()
	pdf.SetCatalogSort(true) // fonts and resources in a fixed order: the same record gives the same bytes
	pdf.SetCreationDate(stamp)
	pdf.SetModificationDate(stamp)
	pdf.SetTitle("Medication Therapy Management: "+name(in.Patient), true)
	pdf.SetAuthor(in.PharmacyName, true)
	r := renderer{pdf: pdf, tr: pdf.UnicodeTranslatorFromDescriptor(""), in: in}
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.CellFormat(0, 4, r.tr(fmt.Sprintf("%s, DOB %s - page %d of {nb}", name(in.Patient), in.Patient.DateOfBirth, pdf.PageNo())), "", 0, "C", false, 0, "")
	})

	r.coverLetter()
	r.actionPlan()
	r.medicationList()

	if err := pdf.Error(); err != nil {
		return nil, fmt.Errorf("cmspdf.Render: %w", err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, fmt.Errorf("cmspdf.Render: %w", err)
	}
	return buf.Bytes(), nil
}

type renderer struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
	in  Input
}

func name(p store.Patient) string { return strings.TrimSpace(p.GivenName + " " + p.FamilyName) }

func (r renderer) title(text string) {
	r.pdf.SetFont("Helvetica", "B", 16)
	r.pdf.MultiCell(0, 8, r.tr(text), "", "L", false)
	r.pdf.Ln(1)
}

func (r renderer) para(text string) {
	r.pdf.SetFont("Helvetica", "", 11)
	r.pdf.MultiCell(0, lineH, r.tr(text), "", "L", false)
	r.pdf.Ln(2)
}

func (r renderer) heading(text string) {
	r.pdf.SetFont("Helvetica", "B", 11)
	r.pdf.MultiCell(0, lineH, r.tr(text), "", "L", false)
}

// box writes text in a bordered box, with blank lines when text is empty so
// the patient can write in it.
func (r renderer) box(text string, blankLines int) {
	r.pdf.SetFont("Helvetica", "", 11)
	if text == "" {
		text = strings.Repeat("\n", max(blankLines-1, 0))
	}
	r.pdf.MultiCell(0, lineH, r.tr(text), "1", "L", false)
	r.pdf.Ln(3)
}

func (r renderer) prepared() {
	r.pdf.SetFont("Helvetica", "B", 10)
	r.pdf.MultiCell(0, lineH, r.tr("DATE PREPARED: "+r.in.Prepared.String()), "", "L", false)
	r.pdf.Ln(2)
}

func (r renderer) coverLetter() {
	in, pt := r.in, r.in.Patient
	r.pdf.AddPage()
	r.pdf.SetFont("Helvetica", "", 11)
	r.pdf.MultiCell(0, lineH, r.tr(in.PharmacyName), "", "L", false)
	r.pdf.MultiCell(0, lineH, r.tr(in.Prepared.Time().Format("January 2, 2006")), "", "L", false)
	r.pdf.Ln(6)
	r.para("Dear " + name(pt) + ":")
	talked := "Thank you for talking with me about your health and medications."
	if !in.ReviewedOn.IsZero() {
		talked = "Thank you for talking with me on " + in.ReviewedOn.Time().Format("January 2, 2006") + " about your health and medications."
	}
	r.para(talked + " Medicare's MTM (Medication Therapy Management) program helps you make sure that your medications are working.")
	r.para("Along with this letter are an action plan (Medication Action Plan) and a medication list (Personal Medication List). " +
		"The action plan has steps you should take to help you get the best results from your medications. " +
		"The medication list will help you keep track of your medications and how to use them the right way.")
	r.para("Have your action plan and medication list with you when you talk with your doctors, pharmacists, and other healthcare providers. " +
		"Ask them to update the list at every visit. Share these with your family or caregivers too.")
	r.para("If you want to talk about this information, please contact " + contact(in) + ".")
	r.pdf.Ln(4)
	r.para("Sincerely,")
	if in.PharmacistName != "" {
		r.para(in.PharmacistName)
	}
	r.para(in.PharmacyName)
}

func contact(in Input) string {
	switch {
	case in.PharmacistName != "" && in.PharmacyName != "":
		return in.PharmacistName + " at " + in.PharmacyName
	case in.PharmacyName != "":
		return in.PharmacyName
	case in.PharmacistName != "":
		return in.PharmacistName
	}
	return "your pharmacist"
}

func (r renderer) actionPlan() {
	pt := r.in.Patient
	r.pdf.AddPage()
	r.title(HeadingMAP + " for " + name(pt) + ", DOB: " + pt.DateOfBirth.String())
	r.para("This action plan will help you get the best results from your medications if you:\n" +
		"1. Read \"What we talked about.\"\n" +
		"2. Take the steps listed in the \"What I need to do\" boxes.\n" +
		"3. Fill in \"What I did and when I did it.\"\n" +
		"4. Fill in \"My follow-up plan\" and \"Questions I want to ask.\"\n" +
		"Have this action plan with you when you talk with your doctors, pharmacists, and other healthcare providers. Share this with your family or caregivers too.")
	r.prepared()
	for _, item := range pt.ActionItems {
		r.heading(HeadingTalkedAbout)
		r.box(item.WhatWeTalkedAbout, 2)
		r.heading(HeadingNeedToDo)
		r.box(item.WhatINeedToDo, 2)
		r.heading(HeadingDid)
		var did []string
		for _, p := range item.Progress {
			line := p.WhatIDid
			if !p.DoneOn.IsZero() {
				line += " (" + p.DoneOn.String() + ")"
			}
			did = append(did, line)
		}
		r.box(strings.Join(did, "\n"), 3)
	}
	if len(pt.ActionItems) == 0 {
		r.para("No action items were added to your plan.")
	}
	r.heading(HeadingFollowUpPlan)
	r.box(pt.FollowUpPlan, 3)
	r.heading(HeadingQuestions)
	r.box(pt.Questions, 3)
	r.para("If you have any questions about your action plan, contact " + contact(r.in) + ".")
}

func (r renderer) medicationList() {
	pt := r.in.Patient
	r.pdf.AddPage()
	r.title(HeadingPML + " For " + name(pt) + ", DOB: " + pt.DateOfBirth.String())
	r.para("This medication list was made for you after we talked. We also used information from " + orDefault(r.in.PharmacyName, "your pharmacy records") + ".\n" +
		"- Use blank rows to add new medications. Then fill in the dates you started using them.\n" +
		"- Cross out medications when you no longer use them. Then write the date and why you stopped using them.\n" +
		"- Ask your doctors, pharmacists, and other healthcare providers to update this list at every visit.\n" +
		"Keep this list up-to-date with: prescription medications, over-the-counter drugs, herbals, vitamins, and minerals.\n" +
		"If you go to the hospital or emergency room, take this list with you. Share this with your family or caregivers too.")
	r.prepared()

	r.heading(HeadingAllergies)
	var allergies []string
	for _, a := range pt.Allergies {
		line := a.Substance
		if a.Kind == store.KindSideEffect {
			line += " (side effect)"
		}
		if a.Reaction != "" {
			line += ": " + a.Reaction
		}
		allergies = append(allergies, line)
	}
	r.box(strings.Join(allergies, "\n"), 2)

	meds := clinical.PMLOrder(pt.Medications)
	for _, m := range meds {
		r.medicationBox(m)
	}
	r.medicationBox(store.Medication{}) // a blank one to fill in

	var pending []string
	for _, s := range pt.SelfReports {
		if s.Status != "pending" {
			continue
		}
		line := s.Name
		if s.HowIUseIt != "" {
			line += " - " + s.HowIUseIt
		}
		if !s.StartedOn.IsZero() {
			line += " (since " + s.StartedOn.String() + ")"
		}
		pending = append(pending, line)
	}
	if len(pending) > 0 {
		r.heading(HeadingPending)
		r.box(strings.Join(pending, "\n"), 1)
	}

	r.heading(HeadingOtherInfo)
	r.box(pt.OtherInformation, 3)
	r.para("If you have any questions about your medication list, contact " + contact(r.in) + ".")
}

// medicationBox writes one PML row as the standard's labelled box.
func (r renderer) medicationBox(m store.Medication) {
	med := strings.TrimSpace(m.Name + " " + m.Strength)
	rows := [][2]string{
		{HeadingMedication, med},
		{HeadingHowIUse, m.HowIUseIt},
		{HeadingWhyIUse, m.WhyIUseIt},
		{HeadingPrescriber, m.Prescriber},
		{HeadingStarted, m.StartedOn.String()},
		{HeadingStopped, m.StoppedOn.String()},
		{HeadingWhyStopped, m.WhyStopped},
	}
	// Keep a box on one page.
	pageW, pageH := r.pdf.GetPageSize()
	if r.pdf.GetY()+float64(len(rows))*lineH*1.6 > pageH-pageMargin {
		r.pdf.AddPage()
	}
	valueW := pageW - 2*pageMargin - labelW
	for _, row := range rows {
		r.pdf.SetFont("Helvetica", "", 11)
		lines := max(len(r.pdf.SplitLines([]byte(r.tr(row[1])), valueW-2)), 1)
		h := float64(lines) * lineH
		x, y := r.pdf.GetX(), r.pdf.GetY()
		r.pdf.SetFont("Helvetica", "B", 10)
		r.pdf.CellFormat(labelW, h, r.tr(row[0]), "1", 0, "L", false, 0, "")
		r.pdf.SetFont("Helvetica", "", 11)
		r.pdf.SetXY(x+labelW, y)
		r.pdf.MultiCell(valueW, lineH, r.tr(row[1]), "1", "L", false)
		r.pdf.SetXY(x, y+h)
	}
	r.pdf.Ln(4)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// PreparedOn returns the calendar date of t in the patient's time zone
// (UTC when the zone is unknown), for Input.Prepared.
func PreparedOn(p store.Patient, t time.Time) store.Date {
	if loc, err := time.LoadLocation(p.TimeZone); err == nil && p.TimeZone != "" {
		t = t.In(loc)
	}
	return store.DateOf(t)
}

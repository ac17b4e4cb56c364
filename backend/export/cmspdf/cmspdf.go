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
// own heading, never as PML rows.
//
// Text is set in embedded fonts (Noto Sans for Latin, Greek and Cyrillic,
// Droid Sans Fallback for Chinese, Japanese and Korean; see fonts/), a font
// chosen per character and subset into the document. A character that no
// font can print fails the export with an error naming the field: it never
// vanishes from the page.
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

// Text styles of the document.
var (
	styleTitle   = style{bold: true, size: 16}
	styleBody    = style{size: 11}
	styleHeading = style{bold: true, size: 11}
	styleLabel   = style{bold: true, size: 10}
	styleFooter  = style{size: 8}
)

// Render returns the PDF. It fails with an *UnprintableError, naming the
// field, when the record holds a character the embedded fonts cannot print
// (it never prints the text with the character missing), and otherwise
// only if the PDF cannot be produced.
func Render(in Input) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "Letter", "")
	pdf.SetMargins(pageMargin, pageMargin, pageMargin)
	pdf.SetAutoPageBreak(false, pageMargin) // page breaks are the layout's (block, medicationBox)
	stamp := in.Prepared.Time()
	pdf.SetCatalogSort(true) // fonts and resources in a fixed order: the same record gives the same bytes
	pdf.SetCreationDate(stamp)
	pdf.SetModificationDate(stamp)
	pdf.SetTitle("Medication Therapy Management: "+name(in.Patient), true)
	pdf.SetAuthor(in.PharmacyName, true)
	r := renderer{page: newPage(pdf), in: in}
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(r.footer)

	r.coverLetter()
	r.actionPlan()
	r.medicationList()

	if r.err != nil {
		return nil, r.err
	}
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
	*page
	in Input
}

// Field names for errors, after the record's fields.
const (
	fieldName = "patient.name"
	fieldDOB  = "patient.date_of_birth"
)

func name(p store.Patient) string { return strings.TrimSpace(p.GivenName + " " + p.FamilyName) }

func (r renderer) footer() {
	if r.err != nil {
		return
	}
	pageW, pageH := r.pdf.GetPageSize()
	// The name is the record's; the rest is fixed text. {nb} becomes the
	// page count when the document is written.
	lines := r.wrap(fieldName, fmt.Sprintf("%s, DOB %s - page %d of {nb}", name(r.in.Patient), r.in.Patient.DateOfBirth, r.pdf.PageNo()),
		styleFooter, pageW)
	if len(lines) > 0 {
		r.drawLine(lines[0], styleFooter, 0, pageH-12, pageW, 4, true)
	}
}

func (r renderer) title(field, text string) {
	r.block(field, text, styleTitle, 8, false, 0)
	r.pdf.Ln(1)
}

// para writes a paragraph; field is empty for the document's own wording
// and names the record's field otherwise.
func (r renderer) para(field, text string) {
	r.block(field, text, styleBody, lineH, false, 0)
	r.pdf.Ln(2)
}

func (r renderer) heading(text string) {
	r.block("", text, styleHeading, lineH, false, 0)
}

// box writes text in a bordered box, with blank lines when text is empty so
// the patient can write in it.
func (r renderer) box(field, text string, blankLines int) {
	r.block(field, text, styleBody, lineH, true, blankLines)
	r.pdf.Ln(3)
}

func (r renderer) prepared() {
	r.block("", "DATE PREPARED: "+r.in.Prepared.String(), style{bold: true, size: 10}, lineH, false, 0)
	r.pdf.Ln(2)
}

func (r renderer) coverLetter() {
	in, pt := r.in, r.in.Patient
	r.pdf.AddPage()
	r.para("pharmacy.name", in.PharmacyName)
	r.para("", in.Prepared.Time().Format("January 2, 2006"))
	r.pdf.Ln(4)
	r.para(fieldName, "Dear "+name(pt)+":")
	talked := "Thank you for talking with me about your health and medications."
	if !in.ReviewedOn.IsZero() {
		talked = "Thank you for talking with me on " + in.ReviewedOn.Time().Format("January 2, 2006") + " about your health and medications."
	}
	r.para("", talked+" Medicare's MTM (Medication Therapy Management) program helps you make sure that your medications are working.")
	r.para("", "Along with this letter are an action plan (Medication Action Plan) and a medication list (Personal Medication List). "+
		"The action plan has steps you should take to help you get the best results from your medications. "+
		"The medication list will help you keep track of your medications and how to use them the right way.")
	r.para("", "Have your action plan and medication list with you when you talk with your doctors, pharmacists, and other healthcare providers. "+
		"Ask them to update the list at every visit. Share these with your family or caregivers too.")
	r.para("pharmacy.name", "If you want to talk about this information, please contact "+contact(in)+".")
	r.pdf.Ln(4)
	r.para("", "Sincerely,")
	if in.PharmacistName != "" {
		r.para("pharmacist.name", in.PharmacistName)
	}
	r.para("pharmacy.name", in.PharmacyName)
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
	r.title(fieldName, HeadingMAP+" for "+name(pt)+", DOB: "+pt.DateOfBirth.String())
	r.para("", "This action plan will help you get the best results from your medications if you:\n"+
		"1. Read \"What we talked about.\"\n"+
		"2. Take the steps listed in the \"What I need to do\" boxes.\n"+
		"3. Fill in \"What I did and when I did it.\"\n"+
		"4. Fill in \"My follow-up plan\" and \"Questions I want to ask.\"\n"+
		"Have this action plan with you when you talk with your doctors, pharmacists, and other healthcare providers. Share this with your family or caregivers too.")
	r.prepared()
	for _, item := range pt.ActionItems {
		field := fmt.Sprintf("action_items[%q]", item.ID)
		r.heading(HeadingTalkedAbout)
		r.box(field+".what_we_talked_about", item.WhatWeTalkedAbout, 2)
		r.heading(HeadingNeedToDo)
		r.box(field+".what_i_need_to_do", item.WhatINeedToDo, 2)
		r.heading(HeadingDid)
		var did []string
		for _, p := range item.Progress {
			line := p.WhatIDid
			if !p.DoneOn.IsZero() {
				line += " (" + p.DoneOn.String() + ")"
			}
			did = append(did, line)
		}
		r.box(field+".progress", strings.Join(did, "\n"), 3)
	}
	if len(pt.ActionItems) == 0 {
		r.para("", "No action items were added to your plan.")
	}
	r.heading(HeadingFollowUpPlan)
	r.box("follow_up_plan", pt.FollowUpPlan, 3)
	r.heading(HeadingQuestions)
	r.box("questions", pt.Questions, 3)
	r.para("pharmacy.name", "If you have any questions about your action plan, contact "+contact(r.in)+".")
}

func (r renderer) medicationList() {
	pt := r.in.Patient
	r.pdf.AddPage()
	r.title(fieldName, HeadingPML+" For "+name(pt)+", DOB: "+pt.DateOfBirth.String())
	r.para("pharmacy.name", "This medication list was made for you after we talked. We also used information from "+orDefault(r.in.PharmacyName, "your pharmacy records")+".\n"+
		"- Use blank rows to add new medications. Then fill in the dates you started using them.\n"+
		"- Cross out medications when you no longer use them. Then write the date and why you stopped using them.\n"+
		"- Ask your doctors, pharmacists, and other healthcare providers to update this list at every visit.\n"+
		"Keep this list up-to-date with: prescription medications, over-the-counter drugs, herbals, vitamins, and minerals.\n"+
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
		r.check(fmt.Sprintf("allergies[%q].substance", a.ID), a.Substance)
		r.check(fmt.Sprintf("allergies[%q].reaction", a.ID), a.Reaction)
	}
	r.box("allergies", strings.Join(allergies, "\n"), 2)

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
		r.box("self_reports", strings.Join(pending, "\n"), 1)
	}

	r.heading(HeadingOtherInfo)
	r.box("other_information", pt.OtherInformation, 3)
	r.para("pharmacy.name", "If you have any questions about your medication list, contact "+contact(r.in)+".")
}

// check fails the document when text holds a character that cannot be
// printed, naming field; for texts that are printed joined with others,
// so that the error names the exact field.
func (r renderer) check(field, text string) {
	r.wrap(field, text, styleBody, 1e6)
	r.wrap(field, text, styleHeading, 1e6)
}

// medicationBox writes one PML row as the standard's labelled box.
func (r renderer) medicationBox(m store.Medication) {
	field := fmt.Sprintf("medications[%q]", m.ID)
	rows := []struct{ label, field, value string }{
		{HeadingMedication, field + ".name", strings.TrimSpace(m.Name + " " + m.Strength)},
		{HeadingHowIUse, field + ".how_i_use_it", m.HowIUseIt},
		{HeadingWhyIUse, field + ".why_i_use_it", m.WhyIUseIt},
		{HeadingPrescriber, field + ".prescriber", m.Prescriber},
		{HeadingStarted, field + ".started_on", m.StartedOn.String()},
		{HeadingStopped, field + ".stopped_on", m.StoppedOn.String()},
		{HeadingWhyStopped, field + ".why_stopped", m.WhyStopped},
	}
	left, _, right, _ := r.pdf.GetMargins()
	pageW, _ := r.pdf.GetPageSize()
	valueW := pageW - left - right - labelW
	type cell struct{ label, value []line }
	cells := make([]cell, len(rows))
	total := 0.0
	for i, row := range rows {
		cells[i] = cell{r.wrap("", row.label, styleLabel, labelW-2*cellPad), r.wrap(row.field, row.value, styleBody, valueW-2*cellPad)}
		total += float64(max(len(cells[i].label), len(cells[i].value), 1)) * lineH
	}
	if r.err != nil {
		return
	}
	// Keep a box on one page.
	if r.pdf.GetY()+total > r.bottom() {
		r.pdf.AddPage()
	}
	x, y := left, r.pdf.GetY()
	for _, c := range cells {
		h := float64(max(len(c.label), len(c.value), 1)) * lineH
		r.pdf.Rect(x, y, labelW, h, "D")
		r.pdf.Rect(x+labelW, y, valueW, h, "D")
		for i, ln := range c.label {
			r.drawLine(ln, styleLabel, x, y+float64(i)*lineH, labelW, lineH, false)
		}
		for i, ln := range c.value {
			r.drawLine(ln, styleBody, x+labelW, y+float64(i)*lineH, valueW, lineH, false)
		}
		y += h
	}
	r.pdf.SetXY(x, y)
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

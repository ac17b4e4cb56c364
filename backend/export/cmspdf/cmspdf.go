// Package cmspdf renders a patient's record in the CMS Part D Medication
// Therapy Management Standardized Format (CMS-10396) as a PDF: the cover
// letter, the Recommended To-Do List (the Medication Action Plan) and the
// Medication List (the Personal Medication List), with the headings and
// per-item fields the standard prescribes, 12 pt body text and US dates.
//
// Every medication is a box with the standard's fields (Medication, How I
// use it, When I use it — the dose schedules —, Why I use it, Prescriber,
// dates started and stopped, why stopped); current medicines come first
// with a blank box to fill in, then the stopped ones under their own
// heading. Medicines the patient reported themselves that a pharmacist has
// not reviewed yet are listed under their own heading, never as rows.
//
// The wording comes from a catalog per language (catalog/*.json, English
// and Spanish shipped), chosen by the patient's preferred language.
//
// Text is set in embedded fonts (fonts/: Noto Sans for Latin, Greek and
// Cyrillic, Droid Sans Fallback for Chinese and Japanese, Nanum Gothic for
// Korean), a font chosen per character and subset into the document. A
// character that no font can print fails the export with an error naming
// the field: it never vanishes from the page.
package cmspdf

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
)

// ContentType is the media type of the rendered document.
const ContentType = "application/pdf"

// Input is what goes into the document.
type Input struct {
	Patient store.Patient
	// Pharmacy is the pharmacy's name and contact details (phone, TTY,
	// hours, address, plan) as the letter prints them.
	Pharmacy       store.Pharmacy
	PharmacistName string // who signs the letter; may be empty
	// ReviewedOn is the date of the review the letter follows (the last
	// CMR); zero leaves the sentence without a date.
	ReviewedOn store.Date
	// Prepared is the "date prepared" printed on the to-do list and the
	// medication list.
	Prepared store.Date
	// Language is the patient's preferred language (BCP 47); it selects the
	// wording (Languages lists those shipped; English otherwise).
	Language string
}

const (
	pageMargin = 18.0
	lineH      = 6.0 // for 12 pt text
	labelW     = 62.0
)

// Text styles of the document: CMS asks for 12 pt body text at least.
var (
	styleTitle   = style{bold: true, size: 16}
	styleBody    = style{size: 12}
	styleHeading = style{bold: true, size: 12}
	styleLabel   = style{bold: true, size: 12}
	styleFooter  = style{size: 9}
)

// Render returns the PDF. It fails with an *UnprintableError, naming the
// field, when the record holds a character the embedded fonts cannot print
// (it never prints the text with the character missing), and otherwise
// only if the PDF cannot be produced.
func Render(in Input) ([]byte, error) {
	cat, err := catalogFor(in.Language)
	if err != nil {
		return nil, err
	}
	pdf := fpdf.New("P", "mm", "Letter", "")
	pdf.SetMargins(pageMargin, pageMargin, pageMargin)
	pdf.SetAutoPageBreak(false, pageMargin) // page breaks are the layout's (block, medicationBox)
	stamp := in.Prepared.Time()
	pdf.SetCatalogSort(true) // fonts and resources in a fixed order: the same record gives the same bytes
	pdf.SetCreationDate(stamp)
	pdf.SetModificationDate(stamp)
	pdf.SetTitle("Medication Therapy Management: "+name(in.Patient), true)
	pdf.SetAuthor(in.Pharmacy.Name, true)
	pdf.SetLang(cat.tag.String())
	r := renderer{page: newPage(pdf), in: in, cat: cat}
	pdf.AliasNbPages("")
	pdf.SetFooterFunc(r.footer)

	r.coverLetter()
	r.toDoList()
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
	in  Input
	cat catalog
}

// Field names for errors, after the record's fields.
const (
	fieldName       = "patient.name"
	fieldPharmacy   = "pharmacy.name"
	fieldPharmacist = "pharmacist.name"
)

func name(p store.Patient) string { return strings.TrimSpace(p.GivenName + " " + p.FamilyName) }

func (r renderer) footer() {
	if r.err != nil {
		return
	}
	pageW, pageH := r.pdf.GetPageSize()
	// {nb} becomes the page count when the document is written.
	lines := r.wrap(fieldName, r.cat.text("footer", "name", name(r.in.Patient), "dob", r.cat.date(r.in.Patient.DateOfBirth),
		"page", strconv.Itoa(r.pdf.PageNo()), "pages", "{nb}"), styleFooter, pageW)
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
	r.block("", r.cat.text("date_prepared", "date", r.cat.date(r.in.Prepared)), styleHeading, lineH, false, 0)
	if !r.in.ReviewedOn.IsZero() && r.in.PharmacistName != "" {
		r.block(fieldPharmacist, r.cat.text("last_review", "date", r.cat.date(r.in.ReviewedOn), "pharmacist", r.in.PharmacistName), styleBody, lineH, false, 0)
	}
	r.pdf.Ln(2)
}

func (r renderer) coverLetter() {
	in, pt, cat := r.in, r.in.Patient, r.cat
	r.pdf.AddPage()
	ph := in.Pharmacy
	r.block(fieldPharmacy, ph.Name, styleHeading, lineH, false, 0)
	r.block("pharmacy.address", ph.Address, styleBody, lineH, false, 0)
	r.block("pharmacy.phone", ph.Phone, styleBody, lineH, false, 0)
	r.pdf.Ln(4)
	r.para("", cat.longDate(in.Prepared))
	// The inside address.
	r.block(fieldName, name(pt), styleBody, lineH, false, 0)
	r.block("patient.address", pt.Address, styleBody, lineH, false, 0)
	r.pdf.Ln(4)
	r.para(fieldName, cat.text("letter_salutation", "name", name(pt)))
	talked := cat.text("letter_thanks")
	if !in.ReviewedOn.IsZero() {
		talked = cat.text("letter_thanks_on", "date", cat.longDate(in.ReviewedOn))
	}
	r.para("", talked+" "+cat.text("letter_program"))
	r.para("", cat.text("letter_includes"))
	for _, b := range []string{"letter_bullet_visits", "letter_bullet_update", "letter_bullet_hospital", "letter_bullet_share"} {
		r.block("", "• "+cat.text(b), styleBody, lineH, false, 0)
	}
	r.pdf.Ln(2)
	contactLine := cat.text("letter_contact", "contact", r.contact())
	if ph.Phone != "" {
		contactLine = cat.text("letter_contact_phone", "contact", r.contact(), "phone", ph.Phone)
	}
	if ph.Hours != "" {
		contactLine += " " + cat.text("hours", "hours", ph.Hours)
	}
	if ph.TTY != "" {
		contactLine += " " + cat.text("tty", "tty", ph.TTY)
	}
	r.para("pharmacy.contact", contactLine)
	if ph.PlanName != "" {
		r.para("pharmacy.plan_name", cat.text("plan", "plan", ph.PlanName))
	}
	r.pdf.Ln(4)
	r.para("", cat.text("letter_closing"))
	if in.PharmacistName != "" {
		r.para(fieldPharmacist, in.PharmacistName)
	}
	r.para(fieldPharmacy, in.Pharmacy.Name)
}

func (r renderer) contact() string {
	in := r.in
	switch {
	case in.PharmacistName != "" && in.Pharmacy.Name != "":
		return r.cat.text("contact_at", "pharmacist", in.PharmacistName, "pharmacy", in.Pharmacy.Name)
	case in.Pharmacy.Name != "":
		return in.Pharmacy.Name
	case in.PharmacistName != "":
		return in.PharmacistName
	}
	return r.cat.text("contact_default")
}

// toDoList writes the Recommended To-Do List (the Medication Action Plan).
func (r renderer) toDoList() {
	pt, cat := r.in.Patient, r.cat
	r.pdf.AddPage()
	r.title(fieldName, cat.text("todo_title", "name", name(pt), "dob", cat.date(pt.DateOfBirth)))
	r.para("", cat.text("todo_intro"))
	r.prepared()
	for _, item := range pt.ActionItems {
		field := fmt.Sprintf("action_items[%q]", item.ID)
		r.heading(cat.text("talked_about"))
		r.box(field+".what_we_talked_about", item.WhatWeTalkedAbout, 2)
		r.heading(cat.text("need_to_do"))
		r.box(field+".what_i_need_to_do", item.WhatINeedToDo, 2)
		r.heading(cat.text("did"))
		var did []string
		for _, p := range item.Progress {
			line := p.WhatIDid
			if !p.DoneOn.IsZero() {
				line += " (" + cat.date(p.DoneOn) + ")"
			}
			did = append(did, line)
		}
		r.box(field+".progress", strings.Join(did, "\n"), 3)
	}
	if len(pt.ActionItems) == 0 {
		r.para("", cat.text("no_items"))
	}
	r.heading(cat.text("follow_up_plan"))
	plan := pt.FollowUpPlan
	if next, ok := nextFollowUp(pt, r.in.Prepared); ok {
		plan = strings.TrimSpace(cat.text("follow_up_on", "date", cat.date(next)) + "\n" + plan)
	}
	r.box("follow_up_plan", plan, 3)
	r.heading(cat.text("questions"))
	r.box("questions", pt.Questions, 3)
	r.para(fieldPharmacy, cat.text("todo_contact", "contact", r.contact()))
}

// nextFollowUp is the date of the patient's first follow-up on or after
// the day the document is prepared.
func nextFollowUp(pt store.Patient, from store.Date) (store.Date, bool) {
	var next store.Date
	for _, f := range pt.FollowUps {
		d := store.DateOf(f.DueAt)
		if d.Before(from) {
			continue
		}
		if next.IsZero() || d.Before(next) {
			next = d
		}
	}
	return next, !next.IsZero()
}

func (r renderer) medicationList() {
	pt, cat := r.in.Patient, r.cat
	r.pdf.AddPage()
	r.title(fieldName, cat.text("list_title", "name", name(pt), "dob", cat.date(pt.DateOfBirth)))
	r.para(fieldPharmacy, cat.text("list_intro", "source", orDefault(r.in.Pharmacy.Name, cat.text("list_source_default"))))
	r.prepared()
	if c := contactText(pt.PrimaryCare); c != "" {
		r.block("primary_care", cat.text("primary_care", "contact", c), styleBody, lineH, false, 0)
	}
	if c := contactText(pt.EmergencyContact); c != "" {
		r.block("emergency_contact", cat.text("emergency_contact", "contact", c), styleBody, lineH, false, 0)
	}
	r.pdf.Ln(2)

	r.heading(cat.text("allergies"))
	var allergies []string
	for _, a := range pt.Allergies {
		line := a.Substance
		if a.Kind == store.KindSideEffect {
			line += " " + cat.text("side_effect")
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
	current := slices.IndexFunc(meds, func(m store.Medication) bool { return !m.StoppedOn.IsZero() })
	if current < 0 {
		current = len(meds)
	}
	for _, m := range meds[:current] {
		r.medicationBox(m)
	}
	r.medicationBox(store.Medication{}) // a blank one to fill in
	if stopped := meds[current:]; len(stopped) > 0 {
		// Stopped medicines stay in the history, visibly apart from those
		// the patient takes.
		if r.pdf.GetY()+10*lineH > r.bottom() { // the heading stays with its first box
			r.pdf.AddPage()
		}
		r.heading(cat.text("stopped_heading"))
		r.pdf.Ln(1)
		for _, m := range stopped {
			r.medicationBox(m)
		}
	}

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
			line += " (" + cat.text("pending_since", "date", cat.date(s.StartedOn)) + ")"
		}
		pending = append(pending, line)
		r.check(fmt.Sprintf("self_reports[%q].name", s.ID), s.Name)
		r.check(fmt.Sprintf("self_reports[%q].how_i_use_it", s.ID), s.HowIUseIt)
	}
	if len(pending) > 0 {
		r.heading(cat.text("pending"))
		r.box("self_reports", strings.Join(pending, "\n"), 1)
	}

	r.heading(cat.text("other_info"))
	r.box("other_information", pt.OtherInformation, 3)
	r.para("", cat.text("disposal"))
	r.para(fieldPharmacy, cat.text("list_contact", "contact", r.contact()))
}

// check fails the document when text holds a character that cannot be
// printed, naming field; for texts that are printed joined with others,
// so that the error names the exact field.
func (r renderer) check(field, text string) {
	r.wrap(field, text, styleBody, 1e6)
}

// whenIUseIt writes a medicine's dose schedules as times of day (and days
// of the week when not every day), e.g. "8:00 AM, 8:00 PM".
func (r renderer) whenIUseIt(medicationID string) string {
	if medicationID == "" {
		return ""
	}
	var out []string
	for _, ds := range r.in.Patient.DoseSchedules {
		if ds.MedicationID != medicationID {
			continue
		}
		var times []string
		for _, m := range ds.TimesOfDay {
			times = append(times, time.Date(2000, 1, 1, m/60, m%60, 0, 0, time.UTC).Format("3:04 PM"))
		}
		line := strings.Join(times, ", ")
		if len(ds.DaysOfWeek) > 0 && len(ds.DaysOfWeek) < 7 {
			var days []string
			for _, d := range ds.DaysOfWeek {
				days = append(days, d.String()[:3])
			}
			line += " (" + strings.Join(days, ", ") + ")"
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}

// medicationBox writes one PML row as the standard's labelled box.
func (r renderer) medicationBox(m store.Medication) {
	cat := r.cat
	field := fmt.Sprintf("medications[%q]", m.ID)
	rows := []struct{ label, field, value string }{
		{cat.text("medication"), field + ".name", strings.TrimSpace(m.Name + " " + m.Strength)},
		{cat.text("how_i_use"), field + ".how_i_use_it", m.HowIUseIt},
		{cat.text("when_i_use"), "dose_schedules", r.whenIUseIt(m.ID)},
		{cat.text("why_i_use"), field + ".why_i_use_it", m.WhyIUseIt},
		{cat.text("prescriber"), field + ".prescriber", joinNonEmpty(", ", m.Prescriber, m.PrescriberPhone)},
		{cat.text("started"), field + ".started_on", cat.date(m.StartedOn)},
		{cat.text("stopped"), field + ".stopped_on", cat.date(m.StoppedOn)},
		{cat.text("why_stopped"), field + ".why_stopped", m.WhyStopped},
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

// contactText writes a contact as "Name (relationship), phone".
func contactText(c store.Contact) string {
	who := c.Name
	if c.Relationship != "" {
		who = strings.TrimSpace(who + " (" + c.Relationship + ")")
	}
	return joinNonEmpty(", ", who, c.Phone)
}

func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
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

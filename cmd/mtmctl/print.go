package main

import (
	"fmt"
	"io"
	"strings"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// printRecord writes a patient's Personal Medication List and Medication
// Action Plan in the order and wording of the CMS standardized format.
func printRecord(w io.Writer, rec *mtmv1.GetPatientRecordResponse) error {
	p := &printer{w: w}
	pt := rec.GetPatient()
	p.line("%s, %s (%s)", pt.GetFamilyName(), pt.GetGivenName(), pt.GetId())
	p.line("Date of birth: %s    Time zone: %s", pt.GetDateOfBirth(), pt.GetTimeZone())

	pml := rec.GetMedicationList()
	lastFill := map[string]*mtmv1.Fill{}
	for _, f := range pml.GetFills() {
		if prev, ok := lastFill[f.GetMedicationId()]; !ok || f.GetFilledOn() > prev.GetFilledOn() {
			lastFill[f.GetMedicationId()] = f
		}
	}
	var current, stopped []*mtmv1.Medication
	for _, m := range pml.GetMedications() {
		if m.GetStoppedOn() == "" {
			current = append(current, m)
		} else {
			stopped = append(stopped, m)
		}
	}

	p.heading("PERSONAL MEDICATION LIST")
	p.line("Current medicines:")
	if len(current) == 0 {
		p.line("  (none)")
	}
	for i, m := range current {
		p.line("  %d. %s", i+1, medicineName(m))
		p.field("How I use it", m.GetHowIUseIt())
		p.field("Why I use it", m.GetWhyIUseIt())
		p.field("Prescriber", m.GetPrescriber())
		p.field("Date started", m.GetStartedOn())
		if f, ok := lastFill[m.GetId()]; ok {
			p.field("Last fill", fmt.Sprintf("%s, %d days' supply", f.GetFilledOn(), f.GetDaysSupply()))
		}
	}
	if len(stopped) > 0 {
		p.line("Stopped medicines:")
		for _, m := range stopped {
			p.line("  - %s", medicineName(m))
			p.field("Date stopped", m.GetStoppedOn())
			p.field("Why stopped", m.GetWhyStopped())
		}
	}
	p.line("Allergies and side effects:")
	if len(pml.GetAllergies()) == 0 {
		p.line("  (none recorded)")
	}
	for _, a := range pml.GetAllergies() {
		kind := "allergy"
		if a.GetKind() == mtmv1.AllergyKind_ALLERGY_KIND_SIDE_EFFECT {
			kind = "side effect"
		}
		reaction := a.GetReaction()
		if reaction == "" {
			reaction = "reaction not recorded"
		}
		p.line("  - %s (%s): %s", a.GetSubstance(), kind, reaction)
	}
	if conds := rec.GetConditions(); len(conds) > 0 {
		p.line("Conditions the adherence measures read:")
		for _, c := range conds {
			span := "from " + c.GetFrom()
			if c.GetThrough() != "" {
				span += " through " + c.GetThrough()
			} else if c.GetKind() != mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_ESRD {
				span += ", ongoing"
			}
			p.line("  - %s %s (%s)", conditionKindName(c.GetKind()), span, c.GetId())
			p.field("Note", c.GetNote())
		}
	}
	if info := pml.GetOtherInformation(); info != "" {
		p.line("Other information:")
		p.block(info)
	}

	plan := rec.GetActionPlan()
	p.heading("MEDICATION ACTION PLAN")
	if len(plan.GetItems()) == 0 {
		p.line("  (no action items)")
	}
	for i, item := range plan.GetItems() {
		p.line("  %d. What we talked about: %s", i+1, item.GetWhatWeTalkedAbout())
		p.field("What I need to do", item.GetWhatINeedToDo())
		if len(item.GetProgress()) == 0 {
			p.field("What I did and when", "(nothing recorded yet)")
		}
		for _, pr := range item.GetProgress() {
			p.field("What I did and when", fmt.Sprintf("%s: %s", pr.GetDoneOn(), pr.GetWhatIDid()))
		}
	}
	if s := plan.GetFollowUpPlan(); s != "" {
		p.line("My follow-up plan:")
		p.block(s)
	}
	if s := plan.GetQuestions(); s != "" {
		p.line("Questions I want to ask:")
		p.block(s)
	}
	return p.err
}

func medicineName(m *mtmv1.Medication) string {
	s := strings.TrimSpace(m.GetName() + " " + m.GetStrength())
	if m.GetRxcui() != "" {
		s += " (RxCUI " + m.GetRxcui() + ")"
	}
	return s
}

// printer writes lines and remembers the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *printer) heading(s string) {
	p.line("")
	p.line("%s", s)
	p.line("%s", strings.Repeat("=", len(s)))
}

// field prints an indented "label: value", skipping empty values.
func (p *printer) field(label, value string) {
	if value != "" {
		p.line("     %-20s %s", label+":", value)
	}
}

func (p *printer) block(s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		p.line("  %s", l)
	}
}

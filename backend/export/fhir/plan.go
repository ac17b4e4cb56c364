package fhir

import (
	"html"
	"strings"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/mtmapp/mtm/backend/store"
)

// carePlan exports the Medication Action Plan as a us-core-careplan
// (category assess-plan, with the plan as its narrative): each action item
// is an activity ("what I need to do", with "what we talked about" as its
// reason and "what I did and when" as its progress) aimed at a Goal of the
// same text; the follow-up plan and the questions are notes.
//
// The Goals are expressed by the patient: the MAP is written in the
// patient's voice ("What I need to do") and agreed with them, and the store
// does not record which pharmacist wrote each item. The plan's author is
// the pharmacy for the same reason.
func (b *builder) carePlan() {
	pt := b.pt
	if len(pt.ActionItems) == 0 && pt.FollowUpPlan == "" && pt.Questions == "" {
		return
	}
	r := rec("CarePlan", idActionPlan, pt.ID)
	cp := fm.CarePlan{
		Meta:        profile(profileCarePlan),
		Identifier:  []fm.Identifier{r.id},
		Text:        &fm.Narrative{Status: fm.NarrativeStatusGenerated, Div: planNarrative(pt)},
		Status:      fm.RequestStatusActive,
		Intent:      fm.CarePlanIntentPlan,
		Category:    []fm.CodeableConcept{concept(coding(systemCarePlanCategory, "assess-plan", "Assessment and Plan of Treatment"), "")},
		Title:       ptr("Medication Action Plan"),
		Description: ptr("Medication Action Plan agreed with the pharmacist during a medication review."),
		Subject:     b.patientRef(),
		Author:      b.pharmacyRef(),
	}
	for _, item := range pt.ActionItems {
		goal := b.goal(item)
		status := fm.CarePlanActivityStatusInProgress
		if len(item.Progress) == 0 {
			status = fm.CarePlanActivityStatusNotStarted
		}
		act := fm.CarePlanActivity{Detail: &fm.CarePlanActivityDetail{
			Status:      status,
			Description: nonEmpty(item.WhatINeedToDo),
			ReasonCode:  textConcepts(item.WhatWeTalkedAbout),
			Goal:        []fm.Reference{goal.ref("")},
		}}
		for _, pr := range item.Progress {
			act.Progress = append(act.Progress, fm.Annotation{Text: progressText(pr), Time: instant(pr.RecordedAt)})
		}
		cp.Goal = append(cp.Goal, goal.ref(""))
		cp.Activity = append(cp.Activity, act)
	}
	if pt.FollowUpPlan != "" {
		cp.Note = append(cp.Note, fm.Annotation{Text: "My follow-up plan: " + pt.FollowUpPlan})
	}
	if pt.Questions != "" {
		cp.Note = append(cp.Note, fm.Annotation{Text: "Questions I want to ask: " + pt.Questions})
	}
	b.add(r, cp)
}

// goal adds the us-core-goal of an action item and returns its record.
func (b *builder) goal(item store.ActionItem) record {
	r := rec("Goal", idActionItem, item.ID)
	achieved := "in-progress"
	if len(item.Progress) == 0 {
		achieved = "no-progress"
	}
	g := fm.Goal{
		Meta:              profile(profileGoal),
		Identifier:        []fm.Identifier{r.id},
		LifecycleStatus:   fm.GoalLifecycleStatusActive,
		AchievementStatus: &fm.CodeableConcept{Coding: []fm.Coding{coding(systemGoalAchievement, achieved, "")}},
		Description:       fm.CodeableConcept{Text: nonEmpty(item.WhatINeedToDo)},
		Subject:           b.patientRef(),
		ExpressedBy:       ptr(b.patientRef()),
	}
	if !item.CreatedAt.IsZero() {
		g.StartDate = ptr(store.DateOf(item.CreatedAt.UTC()).String())
	}
	b.add(r, g)
	return r
}

func progressText(pr store.Progress) string {
	s := "What I did: " + pr.WhatIDid
	if !pr.DoneOn.IsZero() {
		s += " (on " + pr.DoneOn.String() + ")"
	}
	return s
}

// planNarrative renders the plan as the XHTML the CarePlan's text carries,
// every record value escaped.
func planNarrative(pt store.Patient) string {
	var s strings.Builder
	e := html.EscapeString
	s.WriteString(`<div xmlns="` + narrativeXHTMLNamespace + `"><h3>Medication Action Plan</h3>`)
	if len(pt.ActionItems) > 0 {
		s.WriteString("<ol>")
		for _, item := range pt.ActionItems {
			s.WriteString("<li><p><b>What we talked about:</b> " + e(item.WhatWeTalkedAbout) + "</p>")
			s.WriteString("<p><b>What I need to do:</b> " + e(item.WhatINeedToDo) + "</p>")
			for _, pr := range item.Progress {
				s.WriteString("<p>" + e(progressText(pr)) + "</p>")
			}
			s.WriteString("</li>")
		}
		s.WriteString("</ol>")
	}
	if pt.FollowUpPlan != "" {
		s.WriteString("<p><b>My follow-up plan:</b> " + e(pt.FollowUpPlan) + "</p>")
	}
	if pt.Questions != "" {
		s.WriteString("<p><b>Questions I want to ask:</b> " + e(pt.Questions) + "</p>")
	}
	s.WriteString("</div>")
	return s.String()
}

package fhir

import (
	"strings"
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/mtmapp/mtm/backend/store"
)

// reviewKinds names the review kinds the store records (clinical.ReviewCMR,
// clinical.ReviewTMR) as CMS's Part D MTM program does.
var reviewKinds = map[string]string{
	"cmr": "Comprehensive medication review (CMR)",
	"tmr": "Targeted medication review (TMR)",
}

// deliveries maps the store's delivery methods (the Part D MTM data
// elements' CMR delivery methods) to the Encounter's class (v3 ActCode:
// AMB at the pharmacy, VR for a remote contact) and type.
var deliveries = map[string]struct {
	class fm.Coding
	types []fm.Coding
	text  string
}{
	"face_to_face": {coding(systemActCode, "AMB", "ambulatory"), []fm.Coding{snomedPatientEncounter}, "face to face"},
	"telephone":    {coding(systemActCode, "VR", "virtual"), []fm.Coding{snomedPatientEncounter, snomedTelephoneEncounter}, "by telephone"},
	"telehealth":   {coding(systemActCode, "VR", "virtual"), []fm.Coding{snomedPatientEncounter}, "by telehealth (video)"},
}

// review exports a medication review as a us-core-encounter (how and when
// the patient was seen, by whom, for which pharmacy) and a
// us-core-procedure (the review itself, coded SNOMED CT 182836005 "Review
// of medication", with the problems found and the interventions as notes
// and the follow-ups it set). A delivery method outside the known ones
// ("other") gives the Encounter a class with a data-absent-reason, since
// no ActCode says "other".
func (b *builder) review(rv store.Review) {
	label, ok := reviewKinds[rv.Kind]
	if !ok {
		label = "Medication review"
	}
	day := rv.ReviewedOn
	if day.IsZero() && !rv.CreatedAt.IsZero() {
		day = store.DateOf(rv.CreatedAt.UTC())
	}
	pharmacist := b.pharmacistRef(rv.PharmacistID)

	how, known := deliveries[rv.DeliveryMethod]
	text := label
	if known {
		text += ", " + how.text
	} else if rv.DeliveryMethod != "" {
		text += ", delivery: " + rv.DeliveryMethod
	}
	enc := rec("Encounter", idReview, rv.ID)
	e := fm.Encounter{
		Meta:            profile(profileEncounter),
		Identifier:      []fm.Identifier{enc.id},
		Status:          fm.EncounterStatusFinished,
		Class:           how.class,
		Type:            []fm.CodeableConcept{{Coding: how.types, Text: ptr(text)}},
		Subject:         ptr(b.patientRef()),
		Period:          period(day, day),
		ServiceProvider: b.pharmacyRef(),
	}
	if !known {
		e.Type[0].Coding = []fm.Coding{snomedPatientEncounter}
	}
	if pharmacist != nil {
		e.Participant = []fm.EncounterParticipant{{
			Type:       []fm.CodeableConcept{concept(coding(systemParticipationType, "PPRF", "primary performer"), "")},
			Individual: pharmacist,
		}}
	}
	var patches []func(map[string]any)
	if !known {
		patches = append(patches, func(m map[string]any) { m["class"] = dataAbsent() })
	}
	b.add(enc, e, patches...)

	proc := rec("Procedure", idReview, rv.ID)
	p := fm.Procedure{
		Meta:              profile(profileProcedure),
		Identifier:        []fm.Identifier{proc.id},
		Status:            fm.EventStatusCompleted,
		Code:              ptr(concept(snomedMedicationReview, label)),
		Subject:           b.patientRef(),
		Encounter:         ptr(enc.ref("")),
		PerformedDateTime: nonEmpty(day.String()),
	}
	if day.IsZero() { // US Core's us-core-7: completed needs performed[x]
		p.Status = fm.EventStatusUnknown
	}
	if pharmacist != nil {
		p.Performer = []fm.ProcedurePerformer{{Actor: *pharmacist, OnBehalfOf: b.pharmacyRef()}}
	} else {
		p.Performer = []fm.ProcedurePerformer{{Actor: *b.pharmacyRef()}}
	}
	for _, problem := range rv.Problems {
		p.Note = append(p.Note, fm.Annotation{Text: "Medication-related problem found: " + problem})
	}
	for _, iv := range rv.Interventions {
		p.Note = append(p.Note, fm.Annotation{Text: interventionText(iv)})
	}
	if !rv.SummaryDeliveredOn.IsZero() {
		p.Note = append(p.Note, fm.Annotation{Text: summaryText(rv)})
	}
	for _, fu := range b.pt.FollowUps {
		if fu.ReviewID == rv.ID && !fu.DueAt.IsZero() {
			p.FollowUp = append(p.FollowUp, fm.CodeableConcept{Text: ptr("Follow-up on " + b.localDate(fu.DueAt).String())})
		}
	}
	b.add(proc, p)
}

func interventionText(iv store.Intervention) string {
	s := "Intervention: "
	if iv.Kind == "referral" {
		s = "Referral"
		if iv.ReferredTo != "" {
			s += " to " + iv.ReferredTo
		}
		s += ": "
	}
	s += iv.Description
	if iv.Outcome != "" {
		s += ". Outcome: " + iv.Outcome
	}
	return s
}

// summaryText says when, how and to whom the written summary of the review
// was delivered.
func summaryText(rv store.Review) string {
	s := "Written summary delivered on " + rv.SummaryDeliveredOn.String()
	if rv.SummaryMethod != "" {
		s += " by " + strings.ReplaceAll(rv.SummaryMethod, "_", " ")
	}
	if rv.SummaryRecipient != "" {
		s += " to " + strings.ReplaceAll(rv.SummaryRecipient, "_", " ")
	}
	return s
}

// localDate is t's calendar date in the patient's time zone (UTC when the
// zone is unset or unknown).
func (b *builder) localDate(t time.Time) store.Date {
	if loc, err := time.LoadLocation(b.pt.TimeZone); err == nil && b.pt.TimeZone != "" {
		t = t.In(loc)
	} else {
		t = t.UTC()
	}
	return store.DateOf(t)
}

// Package fhir exports a patient's MTM record as a FHIR R4 Bundle (JSON),
// so that any FHIR-capable system can read the medication list, the action
// plan and the allergies the pharmacist keeps.
//
// The Bundle is of type "collection" and holds: the Patient; the pharmacy as
// an Organization; one MedicationStatement per Personal Medication List row
// (stopped ones with status "stopped" and the reason in statusReason); one
// MedicationStatement per self-reported medicine still pending review,
// marked as patient-specified (category "patientspecified", informationSource
// the Patient) so that it never reads as pharmacist-verified; one
// AllergyIntolerance per allergy or side effect; the Medication Action Plan
// as a CarePlan with one activity and one Goal per action item; and one
// Communication per message when messages are given.
//
// Resources are built with the github.com/samply/golang-fhir-models R4
// structs. Entries are linked by urn:uuid full URLs derived from the record
// ids (stable across exports), and resource ids are the record ids with '_'
// written as '.', which FHIR ids allow.
package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/mtmapp/mtm/backend/store"
)

// ContentType is the media type of the exported Bundle.
const ContentType = "application/fhir+json"

// Code systems used in the export.
const (
	systemRxNorm            = "http://www.nlm.nih.gov/research/umls/rxnorm"
	systemStatementCategory = "http://terminology.hl7.org/CodeSystem/medication-statement-category"
	systemAllergyClinical   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	systemGoalAchievement   = "http://terminology.hl7.org/CodeSystem/goal-achievement"
	systemRecordID          = "urn:mtm:patient-id"
)

// Message is one message of a conversation about the patient, exported as
// a Communication.
type Message struct {
	ID       string
	ThreadID string
	Subject  string
	// FromPatientSide is true for the patient or a caregiver, false for a
	// pharmacist.
	FromPatientSide bool
	Body            string
	SentAt          time.Time
}

// Input is what goes into an export.
type Input struct {
	Patient      store.Patient
	PharmacyName string
	// Messages are exported as Communication resources; nil for none.
	Messages []Message
	// Now is the export's timestamp.
	Now time.Time
}

// Bundle returns the patient's record as a FHIR R4 Bundle in JSON. It
// fails only if a resource cannot be encoded.
func Bundle(in Input) ([]byte, error) {
	b := builder{in: in, pt: in.Patient}
	b.patient()
	b.organization()
	for _, m := range in.Patient.Medications {
		b.medicationStatement(m)
	}
	for _, r := range in.Patient.SelfReports {
		if r.Status == "pending" {
			b.selfReported(r)
		}
	}
	for _, a := range in.Patient.Allergies {
		b.allergy(a)
	}
	b.carePlan()
	for _, m := range in.Messages {
		b.communication(m)
	}
	if b.err != nil {
		return nil, fmt.Errorf("fhir.Bundle: %w", b.err)
	}
	bundle := fm.Bundle{
		Id:        ptr(fhirID(in.Patient.ID + ".export")),
		Type:      fm.BundleTypeCollection,
		Timestamp: ptr(in.Now.UTC().Format(time.RFC3339)),
		Entry:     b.entries,
	}
	out, err := marshal(bundle)
	if err != nil {
		return nil, fmt.Errorf("fhir.Bundle: %w", err)
	}
	return out, nil
}

type builder struct {
	in      Input
	pt      store.Patient
	entries []fm.BundleEntry
	err     error
}

// add appends a resource with its full URL.
func (b *builder) add(kind, id string, resource any) {
	if b.err != nil {
		return
	}
	raw, err := marshal(resource)
	if err != nil {
		b.err = fmt.Errorf("%s: %w", kind, err)
		return
	}
	b.entries = append(b.entries, fm.BundleEntry{FullUrl: ptr(fullURL(kind, id)), Resource: raw})
}

func (b *builder) patientRef() fm.Reference {
	return fm.Reference{Reference: ptr(fullURL("Patient", b.pt.ID)), Display: ptr(strings.TrimSpace(b.pt.GivenName + " " + b.pt.FamilyName))}
}

func (b *builder) pharmacyRef() *fm.Reference {
	return &fm.Reference{Reference: ptr(fullURL("Organization", b.pt.PharmacyID)), Display: nonEmpty(b.in.PharmacyName)}
}

func (b *builder) patient() {
	p := fm.Patient{
		Id:                   ptr(fhirID(b.pt.ID)),
		Identifier:           []fm.Identifier{{System: ptr(systemRecordID), Value: ptr(b.pt.ID)}},
		Active:               ptr(true),
		Name:                 []fm.HumanName{{Family: nonEmpty(b.pt.FamilyName), Given: nonEmptySlice(b.pt.GivenName)}},
		BirthDate:            nonEmpty(b.pt.DateOfBirth.String()),
		ManagingOrganization: b.pharmacyRef(),
	}
	b.add("Patient", b.pt.ID, p)
}

func (b *builder) organization() {
	o := fm.Organization{Id: ptr(fhirID(b.pt.PharmacyID)), Active: ptr(true), Name: nonEmpty(b.in.PharmacyName)}
	b.add("Organization", b.pt.PharmacyID, o)
}

func (b *builder) medicationStatement(m store.Medication) {
	s := fm.MedicationStatement{
		Id:                        ptr(fhirID(m.ID)),
		Status:                    "active",
		MedicationCodeableConcept: medicationConcept(m.Name, m.Strength, m.RxCUI),
		Subject:                   b.patientRef(),
		EffectivePeriod:           period(m.StartedOn, m.StoppedOn),
		InformationSource:         b.pharmacyRef(),
		Dosage:                    dosage(m.HowIUseIt),
	}
	if !m.UpdatedAt.IsZero() {
		s.DateAsserted = ptr(m.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if !m.Active() {
		s.Status = "stopped"
		if m.WhyStopped != "" {
			s.StatusReason = []fm.CodeableConcept{{Text: ptr(m.WhyStopped)}}
		}
	}
	if m.WhyIUseIt != "" {
		s.ReasonCode = []fm.CodeableConcept{{Text: ptr(m.WhyIUseIt)}}
	}
	if m.Prescriber != "" {
		s.Note = []fm.Annotation{{Text: "Prescriber: " + m.Prescriber}}
	}
	b.add("MedicationStatement", m.ID, s)
}

func (b *builder) selfReported(r store.SelfReport) {
	src := b.patientRef()
	s := fm.MedicationStatement{
		Id:     ptr(fhirID(r.ID)),
		Status: "active",
		Category: &fm.CodeableConcept{
			Coding: []fm.Coding{{System: ptr(systemStatementCategory), Code: ptr("patientspecified"), Display: ptr("Patient Specified")}},
			Text:   ptr("Reported by patient, pending pharmacist review"),
		},
		MedicationCodeableConcept: medicationConcept(r.Name, "", ""),
		Subject:                   b.patientRef(),
		EffectivePeriod:           period(r.StartedOn, store.Date{}),
		InformationSource:         &src,
		Dosage:                    dosage(r.HowIUseIt),
		Note:                      []fm.Annotation{{Text: "Reported by patient (" + r.Kind + "), pending pharmacist review; not part of the pharmacist-verified medication list."}},
	}
	if !r.ReportedAt.IsZero() {
		s.DateAsserted = ptr(r.ReportedAt.UTC().Format(time.RFC3339))
	}
	b.add("MedicationStatement", r.ID, s)
}

func (b *builder) allergy(a store.Allergy) {
	kind := fm.AllergyIntoleranceTypeAllergy
	if a.Kind == store.KindSideEffect {
		kind = fm.AllergyIntoleranceTypeIntolerance
	}
	ai := fm.AllergyIntolerance{
		Id: ptr(fhirID(a.ID)),
		ClinicalStatus: &fm.CodeableConcept{
			Coding: []fm.Coding{{System: ptr(systemAllergyClinical), Code: ptr("active"), Display: ptr("Active")}},
		},
		Type:    &kind,
		Code:    &fm.CodeableConcept{Text: ptr(a.Substance)},
		Patient: b.patientRef(),
	}
	if !a.RecordedAt.IsZero() {
		ai.RecordedDate = ptr(a.RecordedAt.UTC().Format(time.RFC3339))
	}
	if a.Reaction != "" {
		ai.Reaction = []fm.AllergyIntoleranceReaction{{Manifestation: []fm.CodeableConcept{{Text: ptr(a.Reaction)}}}}
	}
	b.add("AllergyIntolerance", a.ID, ai)
}

// carePlan exports the Medication Action Plan: each action item is an
// activity ("what I need to do", with "what we talked about" as its reason
// and "what I did and when" as its progress) aimed at a Goal of the same
// text; the follow-up plan and the questions are notes.
func (b *builder) carePlan() {
	pt := b.pt
	if len(pt.ActionItems) == 0 && pt.FollowUpPlan == "" && pt.Questions == "" {
		return
	}
	cp := fm.CarePlan{
		Id:          ptr(fhirID(pt.ID + ".map")),
		Status:      fm.RequestStatusActive,
		Intent:      fm.CarePlanIntentPlan,
		Title:       ptr("Medication Action Plan"),
		Description: ptr("Medication Action Plan agreed with the pharmacist during a medication review."),
		Subject:     b.patientRef(),
		Author:      b.pharmacyRef(),
	}
	for _, item := range pt.ActionItems {
		goalID := item.ID + ".goal"
		achieved := "in-progress"
		status := fm.CarePlanActivityStatusInProgress
		if len(item.Progress) == 0 {
			achieved, status = "no-progress", fm.CarePlanActivityStatusNotStarted
		}
		goal := fm.Goal{
			Id:              ptr(fhirID(goalID)),
			LifecycleStatus: fm.GoalLifecycleStatusActive,
			AchievementStatus: &fm.CodeableConcept{
				Coding: []fm.Coding{{System: ptr(systemGoalAchievement), Code: ptr(achieved)}},
			},
			Description: fm.CodeableConcept{Text: ptr(item.WhatINeedToDo)},
			Subject:     b.patientRef(),
			ExpressedBy: b.pharmacyRef(),
		}
		if !item.CreatedAt.IsZero() {
			goal.StartDate = ptr(store.DateOf(item.CreatedAt.UTC()).String())
		}
		b.add("Goal", goalID, goal)

		act := fm.CarePlanActivity{Detail: &fm.CarePlanActivityDetail{
			Status:      status,
			Description: ptr(item.WhatINeedToDo),
			ReasonCode:  []fm.CodeableConcept{{Text: ptr(item.WhatWeTalkedAbout)}},
			Goal:        []fm.Reference{{Reference: ptr(fullURL("Goal", goalID))}},
		}}
		for _, pr := range item.Progress {
			note := fm.Annotation{Text: "What I did: " + pr.WhatIDid}
			if !pr.DoneOn.IsZero() {
				note.Text += " (on " + pr.DoneOn.String() + ")"
			}
			if !pr.RecordedAt.IsZero() {
				note.Time = ptr(pr.RecordedAt.UTC().Format(time.RFC3339))
			}
			act.Progress = append(act.Progress, note)
		}
		cp.Goal = append(cp.Goal, fm.Reference{Reference: ptr(fullURL("Goal", goalID))})
		cp.Activity = append(cp.Activity, act)
	}
	if pt.FollowUpPlan != "" {
		cp.Note = append(cp.Note, fm.Annotation{Text: "My follow-up plan: " + pt.FollowUpPlan})
	}
	if pt.Questions != "" {
		cp.Note = append(cp.Note, fm.Annotation{Text: "Questions I want to ask: " + pt.Questions})
	}
	b.add("CarePlan", pt.ID+".map", cp)
}

func (b *builder) communication(m Message) {
	c := fm.Communication{
		Id:      ptr(fhirID(m.ID)),
		Status:  fm.EventStatusCompleted,
		Subject: ptr(b.patientRef()),
		Topic:   textConcept(m.Subject),
		Payload: []fm.CommunicationPayload{{ContentString: m.Body}},
	}
	if !m.SentAt.IsZero() {
		c.Sent = ptr(m.SentAt.UTC().Format(time.RFC3339))
	}
	if m.FromPatientSide {
		c.Sender, c.Recipient = ptr(b.patientRef()), []fm.Reference{*b.pharmacyRef()}
	} else {
		c.Sender, c.Recipient = b.pharmacyRef(), []fm.Reference{b.patientRef()}
	}
	b.add("Communication", m.ID, c)
}

func medicationConcept(name, strength, rxcui string) fm.CodeableConcept {
	text := strings.TrimSpace(name + " " + strength)
	cc := fm.CodeableConcept{Text: ptr(text)}
	if rxcui != "" {
		cc.Coding = []fm.Coding{{System: ptr(systemRxNorm), Code: ptr(rxcui), Display: ptr(text)}}
	}
	return cc
}

func dosage(how string) []fm.Dosage {
	if how == "" {
		return nil
	}
	return []fm.Dosage{{Text: ptr(how)}}
}

func period(start, end store.Date) *fm.Period {
	if start.IsZero() && end.IsZero() {
		return nil
	}
	return &fm.Period{Start: nonEmpty(start.String()), End: nonEmpty(end.String())}
}

func textConcept(s string) *fm.CodeableConcept {
	if s == "" {
		return nil
	}
	return &fm.CodeableConcept{Text: ptr(s)}
}

// fhirID turns a record id ([A-Za-z0-9_-]) into a FHIR id
// ([A-Za-z0-9.-]{1,64}): '_' becomes '.', which record ids never contain;
// an id too long for FHIR becomes a name-based UUID.
func fhirID(id string) string {
	if len(id) > 64 {
		return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:mtm:id/"+id)).String()
	}
	return strings.ReplaceAll(id, "_", ".")
}

// fullURL is the stable urn:uuid of a resource in the Bundle.
func fullURL(kind, id string) string {
	return "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:mtm:"+kind+"/"+id)).String()
}

// marshal encodes a FHIR value as JSON without the empty objects and
// arrays that the generated structs emit for unset non-pointer fields
// (FHIR forbids empty elements), without escaping HTML characters.
func marshal(v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	tree, _ = prune(tree)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// prune drops empty objects, arrays and strings; keep is false when v
// itself is empty.
func prune(v any) (out any, keep bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if c, ok := prune(child); ok {
				t[k] = c
			} else {
				delete(t, k)
			}
		}
		return t, len(t) > 0
	case []any:
		kept := t[:0]
		for _, child := range t {
			if c, ok := prune(child); ok {
				kept = append(kept, c)
			}
		}
		return kept, len(kept) > 0
	case string:
		return t, t != ""
	}
	return v, v != nil
}

func ptr[T any](v T) *T { return &v }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonEmptySlice(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

package fhir

import (
	"encoding/json"
	"strconv"
	"strings"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/mtmapp/mtm/backend/store"
)

func medicationRec(id string) record { return rec("MedicationRequest", idMedication, id) }

// medicationRequest exports one Personal Medication List row as a
// us-core-medicationrequest. The PML is the pharmacist's verified copy of
// orders written elsewhere, so each row is a reported record
// (reportedReference: the pharmacy that keeps it, or the patient for a
// self-started medicine the pharmacist accepted), requested by the
// prescriber it names (intent "order"), or by the patient for a
// self-started one with no prescriber (intent "plan", as US Core describes
// self-prescribed medicines), or by nobody known (intent "plan", no
// requester: US Core's us-core-21 needs a requester only for orders).
//
// authoredOn is left out: the store does not know when the prescription
// was written, and "date started" is a different fact; the dates started
// and stopped bound the dosage instruction instead.
func (b *builder) medicationRequest(m store.Medication) {
	r := medicationRec(m.ID)
	mr := fm.MedicationRequest{
		Meta:                      profile(profileMedicationRequest),
		Identifier:                []fm.Identifier{r.id},
		Status:                    "active",
		Intent:                    "plan",
		Category:                  []fm.CodeableConcept{concept(coding(systemRequestCategory, "community", "Community"), "")},
		ReportedReference:         b.pharmacyRef(),
		MedicationCodeableConcept: medicationConcept(m.Name, m.Strength, m.RxCUI),
		Subject:                   b.patientRef(),
		Recorder:                  b.pharmacistRef(m.UpdatedBy),
		ReasonCode:                textConcepts(m.WhyIUseIt),
		DosageInstruction:         dosage(m.HowIUseIt, period(m.StartedOn, m.StoppedOn)),
	}
	if b.selfStarted[m.ID] {
		src := b.patientRef()
		mr.ReportedReference, mr.Requester = &src, &src
	}
	if p := b.prescriberRef(m.Prescriber, m.PrescriberPhone); p != nil {
		mr.Intent, mr.Requester = "order", p
	}
	if !m.Active() {
		mr.Status = "stopped"
		mr.StatusReason = textConcept(m.WhyStopped)
	}
	b.add(r, mr)
}

// selfReported exports a medicine the patient reported starting, still
// pending the pharmacist's review, as a patient-specified
// MedicationStatement (no US Core profile exists for it) whose source is
// the patient, so that it never reads as pharmacist-verified.
func (b *builder) selfReported(sr store.SelfReport) {
	r := rec("MedicationStatement", idSelfReport, sr.ID)
	src := b.patientRef()
	s := fm.MedicationStatement{
		Identifier: []fm.Identifier{r.id},
		Status:     "active",
		Category: &fm.CodeableConcept{
			Coding: []fm.Coding{coding(systemStatementCategory, "patientspecified", "Patient Specified")},
			Text:   ptr("Reported by patient, pending pharmacist review"),
		},
		MedicationCodeableConcept: medicationConcept(sr.Name, "", ""),
		Subject:                   b.patientRef(),
		EffectivePeriod:           period(sr.StartedOn, store.Date{}),
		DateAsserted:              instant(sr.ReportedAt),
		InformationSource:         &src,
		Dosage:                    dosage(sr.HowIUseIt, nil),
		Note:                      []fm.Annotation{{Text: "Reported by patient (" + sr.Kind + "), pending pharmacist review; not part of the pharmacist-verified medication list."}},
	}
	b.add(r, s)
}

// dispense exports a fill as a us-core-medicationdispense authorized by the
// PML row's MedicationRequest. The store does not record who dispensed it
// (fills may come from another pharmacy), the quantity or the label's
// instructions, so those are left out; a fill whose row is gone is skipped,
// having nothing to name the medicine by.
func (b *builder) dispense(f store.Fill) {
	m, ok := b.meds[f.MedicationID]
	if !ok {
		return
	}
	r := rec("MedicationDispense", idFill, f.ID)
	subject := b.patientRef()
	d := fm.MedicationDispense{
		Meta:                      profile(profileMedicationDispense),
		Identifier:                []fm.Identifier{r.id},
		Status:                    "completed",
		MedicationCodeableConcept: medicationConcept(m.Name, m.Strength, m.RxCUI),
		Subject:                   &subject,
		AuthorizingPrescription:   []fm.Reference{medicationRec(m.ID).ref("")},
		WhenHandedOver:            nonEmpty(f.FilledOn.String()),
	}
	if f.DaysSupply > 0 {
		d.DaysSupply = &fm.Quantity{Value: ptr(json.Number(strconv.Itoa(f.DaysSupply))), Unit: ptr("day"), System: ptr(systemUCUM), Code: ptr("d")}
	}
	if f.FilledOn.IsZero() { // US Core's us-core-20: completed needs whenHandedOver
		d.Status = "unknown"
	}
	b.add(r, d)
}

// allergy exports an allergy or side effect. Every entry is one the
// pharmacist recorded on the PML after talking with the patient, and the
// store keeps no "unconfirmed" or "resolved" state, so each is active and
// confirmed.
func (b *builder) allergy(a store.Allergy) {
	r := rec("AllergyIntolerance", idAllergy, a.ID)
	kind := fm.AllergyIntoleranceTypeAllergy
	if a.Kind == store.KindSideEffect {
		kind = fm.AllergyIntoleranceTypeIntolerance
	}
	ai := fm.AllergyIntolerance{
		Meta:               profile(profileAllergyIntolerance),
		Identifier:         []fm.Identifier{r.id},
		ClinicalStatus:     ptr(concept(coding(systemAllergyClinical, "active", "Active"), "")),
		VerificationStatus: ptr(concept(coding(systemAllergyVerified, "confirmed", "Confirmed"), "")),
		Type:               &kind,
		Code:               textConcept(a.Substance),
		Patient:            b.patientRef(),
		RecordedDate:       instant(a.RecordedAt),
	}
	if a.Reaction != "" {
		ai.Reaction = []fm.AllergyIntoleranceReaction{{Manifestation: []fm.CodeableConcept{{Text: ptr(a.Reaction)}}}}
	}
	b.add(r, ai)
}

// medicationConcept is the medicine as text, with its RxNorm coding when
// the RxCUI is known.
func medicationConcept(name, strength, rxcui string) fm.CodeableConcept {
	text := strings.TrimSpace(name + " " + strength)
	cc := fm.CodeableConcept{Text: ptr(text)}
	if rxcui != "" {
		cc.Coding = []fm.Coding{coding(systemRxNorm, rxcui, text)}
	}
	return cc
}

// dosage is "how I use it" as the instruction's text, bounded by the dates
// the medicine was started and stopped.
func dosage(how string, bounds *fm.Period) []fm.Dosage {
	if how == "" && bounds == nil {
		return nil
	}
	d := fm.Dosage{Text: nonEmpty(how)}
	if bounds != nil {
		d.Timing = &fm.Timing{Repeat: &fm.TimingRepeat{BoundsPeriod: bounds}}
	}
	return []fm.Dosage{d}
}

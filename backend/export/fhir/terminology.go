package fhir

import (
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// US Core 6.1.0 profiles the export claims in meta.profile. Canonical URLs
// without a version, as servers look profiles up by URL; the elements they
// require were read from the 6.1.0 StructureDefinitions (HL7/US-Core, tag
// 6.1.0). MedicationStatement and Communication have no US Core profile,
// and PractitionerRole claims none: us-core-practitionerrole's invariant
// pd-1 needs a telecom or an endpoint, which the store does not keep.
const (
	usCoreBase                = "http://hl7.org/fhir/us/core/StructureDefinition/"
	profilePatient            = usCoreBase + "us-core-patient"
	profileOrganization       = usCoreBase + "us-core-organization"
	profilePractitioner       = usCoreBase + "us-core-practitioner"
	profileMedicationRequest  = usCoreBase + "us-core-medicationrequest"
	profileMedicationDispense = usCoreBase + "us-core-medicationdispense"
	profileAllergyIntolerance = usCoreBase + "us-core-allergyintolerance"
	profileCarePlan           = usCoreBase + "us-core-careplan"
	profileGoal               = usCoreBase + "us-core-goal"
	profileEncounter          = usCoreBase + "us-core-encounter"
	profileProcedure          = usCoreBase + "us-core-procedure"
)

func profile(url string) *fm.Meta { return &fm.Meta{Profile: []string{url}} }

// Code systems.
const (
	systemRxNorm            = "http://www.nlm.nih.gov/research/umls/rxnorm"
	systemSNOMED            = "http://snomed.info/sct"
	systemUCUM              = "http://unitsofmeasure.org"
	systemBCP47             = "urn:ietf:bcp:47"
	systemNPI               = "http://hl7.org/fhir/sid/us-npi"
	systemNUCC              = "http://nucc.org/provider-taxonomy"
	systemStatementCategory = "http://terminology.hl7.org/CodeSystem/medication-statement-category"
	systemRequestCategory   = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
	systemAllergyClinical   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	systemAllergyVerified   = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	systemGoalAchievement   = "http://terminology.hl7.org/CodeSystem/goal-achievement"
	systemCarePlanCategory  = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category"
	systemActCode           = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemParticipationType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	systemPractitionerRole  = "http://terminology.hl7.org/CodeSystem/practitioner-role"
	systemOrganizationType  = "http://terminology.hl7.org/CodeSystem/organization-type"
	extensionDataAbsent     = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	dataAbsentUnknown       = "unknown"
	narrativeXHTMLNamespace = "http://www.w3.org/1999/xhtml"
)

// Identifier systems: each resource is identified by the id of the record
// it comes from, which the transaction's conditional updates match on.
// Record ids are random (auth.NewID), so unique across pharmacies.
const (
	idPatient    = "urn:mtm:patient-id"
	idPharmacy   = "urn:mtm:pharmacy-id"
	idAccount    = "urn:mtm:account-id"
	idPrescriber = "urn:mtm:prescriber-id" // per pharmacy and name; see prescriber
	idMedication = "urn:mtm:medication-id"
	idSelfReport = "urn:mtm:self-report-id"
	idFill       = "urn:mtm:fill-id"
	idAllergy    = "urn:mtm:allergy-id"
	idActionPlan = "urn:mtm:action-plan-id" // the patient id: one plan each
	idActionItem = "urn:mtm:action-item-id"
	idReview     = "urn:mtm:review-id"
	idMessage    = "urn:mtm:message-id"
)

// SNOMED CT concepts, each checked against public sources (named beside
// it). Only International Edition concepts are used: the US Extension's
// candidates for a comprehensive medication review could not be confirmed
// from two independent public sources (428191000124101, sometimes quoted
// for it, is "Documentation of current medications (procedure)", the CMS
// eCQM code for a medication-list attestation, not a review).
var (
	// 182836005 |Review of medication (procedure)|: FHIR R4's List example
	// (list-example-medlist, code.coding) and the R4 value set
	// diagnostic-based-on-snomed, defined as "is-a 182836005 (Review of
	// medication (procedure))". A descendant of 71388002 |Procedure|, so in
	// US Core's Procedure Codes value set.
	snomedMedicationReview = fm.Coding{System: ptr(systemSNOMED), Code: ptr("182836005"), Display: ptr("Review of medication (procedure)")}
	// 308335008 |Patient encounter procedure (procedure)|: the root of
	// US Core 6.1.0's Encounter Type value set (valueset-us-core-encounter-type,
	// "is-a 308335008"), so always inside it.
	snomedPatientEncounter = fm.Coding{System: ptr(systemSNOMED), Code: ptr("308335008"), Display: ptr("Patient encounter procedure (procedure)")}
	// 185317003 |Telephone encounter (procedure)|: listed under that name
	// in the eCQM telephone-visit value sets and in public FHIR Encounter
	// examples. Whether it descends from 308335008 was not verified, so it
	// is sent beside 308335008, never alone.
	snomedTelephoneEncounter = fm.Coding{System: ptr(systemSNOMED), Code: ptr("185317003"), Display: ptr("Telephone encounter (procedure)")}
)

// NUCC Health Care Provider Taxonomy 183500000X "Pharmacist" (as used for a
// pharmacist's PractitionerRole in public provider-directory FHIR examples
// and NPI registry data), and R4's practitioner-role code "pharmacist".
var pharmacistRoleCode = fm.CodeableConcept{
	Coding: []fm.Coding{
		{System: ptr(systemNUCC), Code: ptr("183500000X"), Display: ptr("Pharmacist")},
		{System: ptr(systemPractitionerRole), Code: ptr("pharmacist"), Display: ptr("Pharmacist")},
	},
	Text: ptr("Pharmacist"),
}

// dataAbsent is the data-absent-reason extension US Core asks for when a
// mandatory element has no value in the source system.
func dataAbsent() map[string]any {
	return map[string]any{"extension": []any{map[string]any{"url": extensionDataAbsent, "valueCode": dataAbsentUnknown}}}
}

func coding(system, code, display string) fm.Coding {
	return fm.Coding{System: ptr(system), Code: ptr(code), Display: nonEmpty(display)}
}

func concept(c fm.Coding, text string) fm.CodeableConcept {
	return fm.CodeableConcept{Coding: []fm.Coding{c}, Text: nonEmpty(text)}
}

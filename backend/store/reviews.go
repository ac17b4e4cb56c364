package store

import "time"

// Review is a documented medication review: a Comprehensive Medication
// Review (annual) or a Targeted Medication Review. Follow-ups it set name
// it in FollowUp.ReviewID.
type Review struct {
	ID             string
	Kind           string // "cmr" or "tmr"
	DeliveryMethod string // "face_to_face", "telephone", "telehealth", "other"
	ReviewedOn     Date
	PharmacistID   string
	Problems       []string // medication-related problems found, free text
	CodedProblems  []CodedProblem
	Interventions  []Intervention
	// CognitiveImpairment: the patient was cognitively impaired at the
	// time of the review (a Part D MTM data element).
	CognitiveImpairment bool
	CreatedAt           time.Time

	// The written summary (CMS standardized format) once given or sent:
	// when, how ("in_person", "mail", "fax", "email", "secure_electronic")
	// and to whom ("patient", "caregiver", "prescriber", "other_authorized").
	SummaryDeliveredOn Date
	SummaryMethod      string
	SummaryRecipient   string
}

// Intervention is something the pharmacist did about a problem found in a
// review: counselling or a change proposed to the prescriber
// (Kind "intervention"), or a referral to another provider ("referral"),
// with its outcome once known.
type Intervention struct {
	Kind        string // "intervention" or "referral"
	Description string
	ReferredTo  string // referrals: the prescriber or service referred to
	Outcome     string // "" until known, e.g. "prescriber accepted the change"
	// Action is what an intervention was: "counselled_patient",
	// "recommendation_to_prescriber" or "change_made_by_pharmacist"; empty
	// for referrals and for interventions recorded without it.
	Action string
	// OutcomeCode is where it ended: "accepted_implemented",
	// "accepted_partially_implemented", "accepted_not_implemented",
	// "not_accepted", "no_response"; empty until known.
	OutcomeCode string
}

// CodedProblem is a drug therapy problem with its category (one of the
// DTP* constants) and its description.
type CodedProblem struct {
	Category    string
	Description string
}

// Drug therapy problem categories (Cipolle, Strand and Morley).
const (
	DTPUnnecessaryTherapy     = "unnecessary_therapy"
	DTPNeedsAdditionalTherapy = "needs_additional_therapy"
	DTPIneffectiveDrug        = "ineffective_drug"
	DTPDosageTooLow           = "dosage_too_low"
	DTPAdverseDrugReaction    = "adverse_drug_reaction"
	DTPDosageTooHigh          = "dosage_too_high"
	DTPAdherence              = "adherence"
	DTPOther                  = "other"
)

// SelfReport is a medicine the patient or a caregiver reports having started
// on their own (OTC, herbal, supplement). It is pending until a pharmacist
// accepts it into the PML or declines it.
type SelfReport struct {
	ID            string
	Kind          string // "otc", "herbal", "supplement"
	Name          string
	HowIUseIt     string
	StartedOn     Date
	ReportedBy    string
	ReportedAt    time.Time
	Status        string // "pending", "accepted", "declined"
	ResolvedBy    string
	ResolvedAt    time.Time
	DeclineReason string
	MedicationID  string // the PML row it became, when accepted
}

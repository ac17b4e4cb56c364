package store

import "time"

// Review is a documented medication review: a Comprehensive Medication
// Review (annual) or a Targeted Medication Review.
type Review struct {
	ID             string
	Kind           string // "cmr" or "tmr"
	DeliveryMethod string // "face_to_face", "telephone", "telehealth", "other"
	ReviewedOn     Date
	PharmacistID   string
	Problems       []string
	Interventions  []string
	CreatedAt      time.Time
}

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

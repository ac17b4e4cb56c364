package store

import "time"

// Device is a phone registered for push notifications, belonging to the
// patient (in Patient.Devices) or to a caregiver (in Account.Devices).
type Device struct {
	ID           string
	FCMToken     string
	Platform     string // "android" or "ios"
	AppVersion   string
	Locale       string
	RegisteredAt time.Time
}

// DoseSchedule says when a medicine is taken: local times of day in the
// patient's time zone, on some days of the week, between two dates.
type DoseSchedule struct {
	ID           string
	MedicationID string
	TimesOfDay   []int          // minutes after local midnight
	DaysOfWeek   []time.Weekday // empty means every day
	StartOn      Date
	EndOn        Date // zero means open-ended
}

// FollowUp is a pharmacist's follow-up with the patient, which the patient
// is reminded of.
type FollowUp struct {
	ID           string
	DueAt        time.Time
	ActionItemID string // optional: the plan item it follows up
	ReviewID     string // optional: the review that set it
	CreatedBy    string
	CreatedAt    time.Time
}

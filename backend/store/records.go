package store

import (
	"strings"
	"time"
)

// Role is what a signed-in principal is to the service.
type Role string

// Roles. A pharmacy admin is a pharmacist who may also manage the
// pharmacy's staff accounts.
const (
	RolePatient       Role = "patient"
	RoleCaregiver     Role = "caregiver"
	RolePharmacist    Role = "pharmacist"
	RolePharmacyAdmin Role = "pharmacy_admin"
)

// IsStaff reports whether the role works for a pharmacy.
func (r Role) IsStaff() bool { return r == RolePharmacist || r == RolePharmacyAdmin }

// Pharmacy is one pharmacy (a store location or a chain's unit) whose
// pharmacists share a patient list and an inbox.
type Pharmacy struct {
	ID        string
	Name      string
	CreatedAt time.Time

	// How patients reach the pharmacy, printed on the documents they get.
	Phone    string
	TTY      string // text telephone for hearing-impaired callers
	Hours    string // e.g. "Mon-Fri 9 AM-6 PM"
	Address  string // postal address, lines separated by newlines
	NPI      string // National Provider Identifier (10 digits)
	PlanName string // the Part D plan the MTM service is provided for, if one

	// RequireSecondFactor: the pharmacy's staff must sign in with a TOTP
	// code (the API's Login refuses them without one).
	RequireSecondFactor bool
}

// Contact is a person the patient's documents name with a way to reach them.
type Contact struct {
	Name         string
	Relationship string // emergency contacts: e.g. "daughter"
	Phone        string
}

// Account is a pharmacist, pharmacy admin or caregiver who signs in with an
// e-mail and password. Patients have no password: they activate a device
// with a one-time code.
type Account struct {
	ID           string
	Email        string // normalized with NormalizeEmail
	DisplayName  string
	PasswordHash string // argon2id, PHC string format
	Role         Role
	PharmacyID   string // staff only
	NPI          string // pharmacists: National Provider Identifier, optional
	CreatedAt    time.Time
	Version      int64
	// Devices are a caregiver's phones, for missed-dose alerts.
	Devices []Device
	// TOTPSecret is the account's second factor (RFC 6238, base32), ""
	// until enrolled; TOTPLastStep is the time step of the last code
	// accepted, so that no code is accepted twice.
	TOTPSecret   string
	TOTPLastStep int64
	// PatientIDs lists, for a caregiver, the patients who granted access
	// (an index: each patient's Grants are the source of truth).
	PatientIDs []string
}

// NormalizeEmail is the form in which e-mails are stored and compared.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Date is a calendar date with no time zone, as MTM documents use them
// (date started, fill date). The zero Date means "not set".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// IsZero reports whether the date is unset.
func (d Date) IsZero() bool { return d == Date{} }

// String formats the date as YYYY-MM-DD, or "" when unset.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	if d.Year < 0 || d.Year > 9999 || d.Month < 1 || d.Month > 12 || d.Day < 1 || d.Day > 28 && d.Day > daysIn(d.Month, d.Year) {
		// Out of range (normalised the way time.Date does it).
		return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	// Written by hand: the PML formats two dates per row.
	b := [10]byte{
		byte('0' + d.Year/1000), byte('0' + d.Year/100%10), byte('0' + d.Year/10%10), byte('0' + d.Year%10), '-',
		byte('0' + d.Month/10), byte('0' + d.Month%10), '-',
		byte('0' + d.Day/10), byte('0' + d.Day%10),
	}
	return string(b[:])
}

// daysIn is the number of days of month m in year y.
func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// ParseDate parses YYYY-MM-DD and rejects impossible dates (2025-02-30).
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, err
	}
	return DateOf(t), nil
}

// DateOf returns the calendar date of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// Time returns midnight UTC of the date, for arithmetic on days.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays returns the date n days later (earlier when n < 0).
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// Before reports whether d is strictly before e.
func (d Date) Before(e Date) bool { return d.Time().Before(e.Time()) }

// QuietHours is a daily window, in the patient's local time, during which
// non-urgent reminders wait. Start == End means no quiet hours. The window
// may wrap past midnight (22:00–07:00).
type QuietHours struct {
	StartMinute int // minutes after local midnight, 0–1439
	EndMinute   int
}

// Patient is one patient's whole record: profile, Personal Medication List
// and Medication Action Plan. It is the unit of atomic update.
type Patient struct {
	ID          string
	PharmacyID  string
	GivenName   string
	FamilyName  string
	DateOfBirth Date

	// Preferences.
	TimeZone          string // IANA name
	QuietHours        QuietHours
	PushNamesMedicine bool   // the patient opted in to medicine names in push text
	PreferredLanguage string // BCP 47; empty means English

	// Contacts, for the documents the patient gets.
	Address          string // postal address, lines separated by newlines
	Phone            string
	EmergencyContact Contact
	PrimaryCare      Contact // primary-care provider

	// Personal Medication List.
	Medications      []Medication // stopped ones stay, with StoppedOn set
	Allergies        []Allergy
	OtherInformation string
	Fills            []Fill

	// Medication Action Plan.
	ActionItems  []ActionItem
	FollowUpPlan string
	Questions    string

	// Caregivers who hold or held access.
	Grants []Grant

	// Reminders: the patient's phones, dose schedules and follow-ups.
	Devices       []Device
	DoseSchedules []DoseSchedule
	FollowUps     []FollowUp

	// Clinical documentation.
	Reviews     []Review
	SelfReports []SelfReport

	// Clinical conditions the PQA adherence measures read: hospice,
	// end-stage renal disease, inpatient and skilled-nursing stays.
	Conditions []Condition

	// Worklist are the days from which the patient belongs on each
	// pharmacy work list (see Worklists); derived data the API keeps.
	Worklist WorklistDates

	ActivatedAt time.Time // first device activation; zero until then
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Version is the whole record's version, the store's own guard of its
	// atomic update. Clients never see it: they send back the version of
	// the part they read (ProfileVersion, Medication.Version,
	// ActionItem.Version), so that unrelated changes do not conflict.
	Version int64
	// ProfileVersion is the version of the profile: names, date of birth,
	// preferences, contacts, activation. The store sets it on every
	// update: unchanged while the profile is unchanged, one more when it
	// changed. Read it with CurrentProfileVersion.
	ProfileVersion int64
}

// CurrentProfileVersion is the profile's version; a record stored before
// profiles had their own version has version 1.
func (p Patient) CurrentProfileVersion() int64 { return max(p.ProfileVersion, 1) }

// StampPartVersions sets next's part versions from cur's, as
// UpdatePatient stores them: each part keeps its version when its
// content is the same as in cur and gets the next one when it changed,
// whatever the update function set.
func StampPartVersions(cur Patient, next *Patient) {
	next.ProfileVersion = cur.CurrentProfileVersion()
	if !sameProfile(cur, *next) {
		next.ProfileVersion++
	}
}

// sameProfile reports whether a and b have the same profile.
func sameProfile(a, b Patient) bool {
	return a.GivenName == b.GivenName && a.FamilyName == b.FamilyName && a.DateOfBirth == b.DateOfBirth &&
		a.TimeZone == b.TimeZone && a.QuietHours == b.QuietHours && a.PushNamesMedicine == b.PushNamesMedicine &&
		a.PreferredLanguage == b.PreferredLanguage && a.Address == b.Address && a.Phone == b.Phone &&
		a.EmergencyContact == b.EmergencyContact && a.PrimaryCare == b.PrimaryCare && a.ActivatedAt.Equal(b.ActivatedAt)
}

// Medication is one row of the Personal Medication List.
type Medication struct {
	ID         string
	Name       string
	Strength   string
	RxCUI      string // RxNorm concept id, optional
	HowIUseIt  string
	WhyIUseIt  string
	Prescriber string
	// PrescriberPhone is how to reach the prescriber, optional.
	PrescriberPhone string
	StartedOn       Date
	StoppedOn       Date // zero while the medicine is taken
	WhyStopped      string
	UpdatedAt       time.Time
	UpdatedBy       string // account id
	Version         int64  // bumped on each change; clients send it back to change the row
	// History lists every change after the row was added, oldest first,
	// with the pharmacist's reason.
	History []MedicationChange
}

// MedicationChange records who changed a PML row, when and why.
type MedicationChange struct {
	At     time.Time
	By     string // account id
	Reason string
}

// Active reports whether the medicine is still taken.
func (m Medication) Active() bool { return m.StoppedOn.IsZero() }

// AllergyKind says whether an entry is an allergy or a side effect.
type AllergyKind string

// Allergy kinds.
const (
	KindAllergy    AllergyKind = "allergy"
	KindSideEffect AllergyKind = "side_effect"
)

// Allergy is an allergy or side effect on the Personal Medication List.
type Allergy struct {
	ID         string
	Kind       AllergyKind
	Substance  string
	Reaction   string
	RecordedAt time.Time
}

// Fill is one dispensing of a medicine: the supply it covers runs through
// FilledOn + DaysSupply − 1.
type Fill struct {
	ID           string
	MedicationID string
	FilledOn     Date
	DaysSupply   int
	RecordedAt   time.Time
}

// ActionItem is one entry of the Medication Action Plan: authored by a
// pharmacist, progress recorded by the patient or a caregiver.
type ActionItem struct {
	ID                string
	WhatWeTalkedAbout string
	WhatINeedToDo     string
	Progress          []Progress
	CreatedAt         time.Time
	UpdatedAt         time.Time
	Version           int64
}

// Progress is one "what I did and when I did it" entry on an action item.
type Progress struct {
	WhatIDid   string
	DoneOn     Date
	RecordedBy string // patient or account id
	RecordedAt time.Time
}

// ActivationCode is a one-time, expiring code a pharmacist hands a newly
// enrolled patient. Only a hash of the code is stored.
type ActivationCode struct {
	CodeHash  string
	PatientID string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// RefreshToken is an opaque, single-use refresh token, stored by hash. All
// tokens descending from one sign-in form a family.
type RefreshToken struct {
	Hash      string
	FamilyID  string
	Subject   string // patient or account id
	Role      Role
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Condition kinds.
const (
	ConditionHospice   = "hospice"   // hospice enrolment: From, Through (zero while ongoing)
	ConditionESRD      = "esrd"      // end-stage renal disease: From is the diagnosis date
	ConditionInpatient = "inpatient" // hospital stay: admission From, discharge Through (zero while admitted)
	ConditionSNF       = "snf"       // skilled-nursing facility stay, as an inpatient stay
)

// Condition is a clinical fact the pharmacist records because PQA's
// adherence measures depend on it.
type Condition struct {
	ID         string
	Kind       string // one of the Condition* constants
	From       Date
	Through    Date // zero: ongoing (never set for ESRD)
	Note       string
	RecordedBy string // account id
	RecordedAt time.Time
}

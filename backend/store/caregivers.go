package store

import (
	"context"
	"slices"
	"time"
)

// Scope is one permission a patient grants a caregiver.
type Scope string

// Caregiver scopes.
const (
	ScopeViewMedicines    Scope = "view_medicines"
	ScopeViewPlan         Scope = "view_plan"
	ScopeMessage          Scope = "message"
	ScopeMissedDoseAlerts Scope = "missed_dose_alerts"
	ScopeManageReminders  Scope = "manage_reminders"
)

// Grant is a caregiver's access to one patient, kept in the patient's record
// (the source of truth checked on every call).
type Grant struct {
	ID            string
	CaregiverID   string // account id
	CaregiverName string
	Scopes        []Scope
	EndsOn        Date // last day of access; zero means no end date
	CreatedAt     time.Time
	RevokedAt     time.Time // zero while the grant stands
}

// Allows reports whether the grant gives scope on the given day (in the
// patient's time zone): it is not revoked, not past its end date, and lists
// the scope.
func (g Grant) Allows(s Scope, today Date) bool {
	if !g.RevokedAt.IsZero() {
		return false
	}
	if !g.EndsOn.IsZero() && g.EndsOn.Before(today) {
		return false
	}
	return slices.Contains(g.Scopes, s)
}

// Invite is a one-time, expiring code a patient hands a caregiver; only its
// hash is stored. Accepting it creates a Grant with its scopes.
type Invite struct {
	CodeHash  string
	PatientID string
	Scopes    []Scope
	EndsOn    Date
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Caregivers holds caregiver invites and lets a caregiver's account be
// updated (its patient index and devices). Grants themselves live in the
// patient's record (Patient.Grants), changed through UpdatePatient.
type Caregivers interface {
	// PutInvite stores an invite under its code hash. ErrAlreadyExists if
	// the hash is taken. A patient may have several live invites.
	PutInvite(ctx context.Context, inv Invite) error
	// ConsumeInvite deletes the invite and returns it, atomically: of two
	// concurrent callers exactly one succeeds. ErrNotFound for an unknown,
	// spent or (at now) expired code.
	ConsumeInvite(ctx context.Context, codeHash string, now time.Time) (Invite, error)
	// UpdateAccount applies fn to the account and stores the result with
	// Version incremented, atomically (fn may run more than once). fn must
	// not change ID, Email or Role. ErrNotFound, or fn's error with nothing
	// written.
	UpdateAccount(ctx context.Context, id string, fn func(Account) (Account, error)) (Account, error)
}

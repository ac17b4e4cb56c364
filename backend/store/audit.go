package store

import (
	"context"
	"time"
)

// AuditEvent is one read or write of a patient's data, allowed or denied.
// Events are append-only: nothing in the API changes or deletes one.
type AuditEvent struct {
	ID        string // unique, sortable by time
	Time      time.Time
	ActorID   string // patient or account id; "" for anonymous
	ActorRole Role
	ActorName string
	PatientID string // whose data was touched
	Procedure string // the RPC, e.g. /mtm.v1.PatientService/GetMedicationList
	Object    string // e.g. medication id, thread id; never a medicine name
	Allowed   bool   // Outcome == OutcomeAllowed
	Outcome   AuditOutcome
	Code      string // Connect code of the answer, "ok" on success
	RequestID string
	// ClientAddr is the client's address as resolved behind trusted
	// proxies; Reason says why a sign-in, activation or invite redemption
	// failed ("" otherwise).
	ClientAddr string
	Reason     string
}

// AuditOutcome says how a call on a patient's data ended, for the "who
// accessed my record" report.
type AuditOutcome string

const (
	// OutcomeAllowed: the call succeeded; the actor read or changed the record.
	OutcomeAllowed AuditOutcome = "allowed"
	// OutcomeDenied: the caller may not touch this record and was refused.
	OutcomeDenied AuditOutcome = "denied"
	// OutcomeFailed: a caller who may touch the record made a call that
	// failed (a bad field, a stale version, an internal error).
	OutcomeFailed AuditOutcome = "failed"
	// OutcomeThrottled: the call was refused by a rate limit.
	OutcomeThrottled AuditOutcome = "throttled"
)

// Refusal reports whether the outcome is a refusal (denied or throttled):
// refusals are kept apart from accesses so that nobody can evict the record
// of who read a record by being refused many times.
func (o AuditOutcome) Refusal() bool { return o == OutcomeDenied || o == OutcomeThrottled }

// EffectiveOutcome is ev.Outcome, or for events stored before outcomes
// existed, allowed or denied from ev.Allowed.
func (ev AuditEvent) EffectiveOutcome() AuditOutcome {
	switch {
	case ev.Outcome != "":
		return ev.Outcome
	case ev.Allowed:
		return OutcomeAllowed
	default:
		return OutcomeDenied
	}
}

// AuditTrail keeps, per patient, two bounded windows of the newest events:
// accesses (allowed and failed calls) and refusals (denied and throttled
// calls, see AuditOutcome.Refusal). Together they are what the "who
// accessed my record" report shows; refusals, however many, never push an
// access out. The six-year archive is the audit sink's job
// (backend/audit), not the store's.
type AuditTrail interface {
	// AppendAuditEvent appends ev to ev.PatientID's access or refusal
	// window, by ev.EffectiveOutcome(), and drops that window's oldest
	// events beyond keep (keep > 0). Appending an ID already stored keeps
	// one event.
	AppendAuditEvent(ctx context.Context, ev AuditEvent, keep int) error
	// ListAuditEvents returns up to limit of the patient's events from
	// both windows, newest first (by ID), with IDs strictly less than
	// before ("" for the newest).
	ListAuditEvents(ctx context.Context, patientID, before string, limit int) ([]AuditEvent, error)
}

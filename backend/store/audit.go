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
	Allowed   bool
	Code      string // Connect code of the answer, "ok" on success
	RequestID string
}

// AuditTrail keeps, per patient, a bounded window of the newest access
// events: what the "who accessed my record" report shows. The six-year
// archive is the audit sink's job (backend/audit), not the store's.
type AuditTrail interface {
	// AppendAuditEvent appends ev to ev.PatientID's window and drops the
	// oldest events beyond keep (keep > 0).
	AppendAuditEvent(ctx context.Context, ev AuditEvent, keep int) error
	// ListAuditEvents returns up to limit of the patient's events, newest
	// first, with IDs strictly less than before ("" for the newest).
	ListAuditEvents(ctx context.Context, patientID, before string, limit int) ([]AuditEvent, error)
}

package store

import "time"

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

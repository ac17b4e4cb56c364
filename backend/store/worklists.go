package store

import "context"

// Worklist names a pharmacy-wide work list: the patients a pharmacist has
// to do something about from a given day on.
type Worklist string

// The work lists.
const (
	// WorklistCMRDue: the annual Comprehensive Medication Review is due.
	WorklistCMRDue Worklist = "cmr_due"
	// WorklistBelowPDC: a current medicine's PQA adherence measure is below
	// the 80% threshold.
	WorklistBelowPDC Worklist = "below_pdc"
	// WorklistFollowUp: a scheduled follow-up is overdue.
	WorklistFollowUp Worklist = "follow_up"
)

// AllWorklists lists every work list.
var AllWorklists = []Worklist{WorklistCMRDue, WorklistBelowPDC, WorklistFollowUp}

// WorklistDates are the days from which a patient belongs on each work list
// (zero: on none). They are a function of the record and of the day they
// were computed on, which the store cannot evaluate (it does not know the
// clinical rules): the API computes them (backend/clinical) on every write
// and stores them in Patient.Worklist; the store indexes each patient of a
// pharmacy under these dates, so that a list is a range query "date ≤ day"
// whose cost does not grow with the number of patients.
type WorklistDates struct {
	CMRDue   Date // the day the next CMR is due
	BelowPDC Date // the first day a current medicine is (or will be, with the fills recorded so far) below 80% PDC
	FollowUp Date // the due day of the earliest open follow-up, in the patient's time zone
}

// Get returns the date of one list.
func (w WorklistDates) Get(l Worklist) Date {
	switch l {
	case WorklistCMRDue:
		return w.CMRDue
	case WorklistBelowPDC:
		return w.BelowPDC
	case WorklistFollowUp:
		return w.FollowUp
	}
	return Date{}
}

// WorklistCursor is a position in a work list: lists are ordered by date,
// then patient id. The zero cursor is the start.
type WorklistCursor struct {
	Due       Date
	PatientID string
}

// WorklistEntry is one patient on a work list, with their record.
type WorklistEntry struct {
	Due     Date
	Patient Patient
}

// Worklists indexes patients by the dates of Patient.Worklist.
//
// CreatePatient, UpdatePatient and SetWorklistDates keep the index in step
// with the record: in the same transaction where the backend has them
// (bbolt); where the record and the pharmacy's index live apart (Redis
// Cluster), the record is written first and the index after, idempotently.
// A reader therefore re-checks every candidate against its record and
// skips one the record does not back (another date, another pharmacy, gone)
// — a stale entry. An entry that is missing (the index write after the
// record failed) is restored by the patient's next write or by
// ReindexPatient.
type Worklists interface {
	// ListWorklist returns up to limit patients of the pharmacy on list l
	// whose date is on or before through, ordered by (date, patient id),
	// starting after the cursor after. Entries the record does not back are
	// skipped (and may be deleted). The entries' records may be shared
	// with other readers (the store's cache of decoded records): the caller
	// must not change what they hold (slices, maps, nested values), and
	// must Clone a record it means to change.
	ListWorklist(ctx context.Context, pharmacyID string, l Worklist, through Date, after WorklistCursor, limit int) ([]WorklistEntry, error)
	// SetWorklistDates replaces the record's Worklist dates and their index
	// entries if the record's Version is still version, without changing
	// the Version (the dates are derived data, not a change a client could
	// conflict with). It returns store.ErrConflict when the record changed
	// meanwhile (whoever changed it wrote their own dates), ErrNotFound.
	SetWorklistDates(ctx context.Context, patientID string, version int64, dates WorklistDates) error
	// ReindexPatient (re)writes the index entries of the patient's stored
	// Worklist dates; idempotent. ErrNotFound if there is no such patient.
	ReindexPatient(ctx context.Context, patientID string) error
}

package store

import (
	"context"
	"errors"
	"reflect"
	"time"
)

// ErrChangesTrimmed means a patient's change log no longer holds every
// change after the cursor asked for (it keeps only the newest
// ChangeLogKeep entries): the caller must reload the record in full.
var ErrChangesTrimmed = errors.New("store: changes after this cursor are no longer kept")

// ChangeLogKeep is how many entries each patient's change log keeps; older
// entries are dropped as new ones arrive.
const ChangeLogKeep = 512

// ChangeKind names a part of a patient's record that the change log
// follows. Per-item kinds carry the item's id; the others have none.
type ChangeKind string

// Change kinds.
const (
	ChangeProfile      ChangeKind = "profile"       // names, birth date, preferences, contacts, activation
	ChangeMedication   ChangeKind = "medication"    // one PML row
	ChangeAllergy      ChangeKind = "allergy"       // one allergy or side effect
	ChangeFill         ChangeKind = "fill"          // one fill
	ChangePMLNotes     ChangeKind = "pml_notes"     // the PML's other information
	ChangeActionItem   ChangeKind = "action_item"   // one MAP item
	ChangePlanNotes    ChangeKind = "plan_notes"    // the MAP's follow-up plan and questions
	ChangeDoseSchedule ChangeKind = "dose_schedule" // one dose schedule
	ChangeThread       ChangeKind = "thread"        // one message thread (new message, state, read marks)
)

// PushedKinds are the kinds whose change by the pharmacy wakes the
// patient's and caregivers' apps with a silent push: the PML, the MAP and
// the dose schedules.
var PushedKinds = []ChangeKind{ChangeMedication, ChangeAllergy, ChangeFill, ChangePMLNotes,
	ChangeActionItem, ChangePlanNotes, ChangeDoseSchedule}

// Change is one entry of a patient's change log: which item of which part
// changed (or went away), at feed position Seq. The log says what
// changed, not how: a reader fetches the item as it is now.
type Change struct {
	Seq     int64 // 1 for the patient's first logged change, then +1 each
	Kind    ChangeKind
	ItemID  string // "" for the kinds without items
	Removed bool
	At      time.Time
}

// PartVersions is the head of a patient's change log: where it stands and
// the Seq of the latest change of each kind. It is small and read without
// decoding the patient's record, so a "has anything changed?" check is
// cheap.
type PartVersions struct {
	// Head is the Seq of the newest change (0 before the first).
	Head int64
	// Oldest is the Seq of the oldest change still kept (0 while the
	// log is empty); changes after a cursor c are all kept when c >=
	// Oldest-1.
	Oldest int64
	// Kinds maps a kind to the Seq of its latest change; a kind that
	// never changed since the log began is absent.
	Kinds map[ChangeKind]int64
}

// Latest returns the Seq of the latest change of any of kinds (0 when none
// of them changed since the log began).
func (v PartVersions) Latest(kinds ...ChangeKind) int64 {
	var n int64
	for _, k := range kinds {
		n = max(n, v.Kinds[k])
	}
	return n
}

// ChangeLog is each patient's bounded log of changes: UpdatePatient
// appends the changes DiffPatient finds, in the same atomic write as the
// record; CreateThread, AppendMessage and UpdateThread append a
// ChangeThread entry for the thread.
type ChangeLog interface {
	// PatientParts returns the head of the patient's change log without
	// reading the record. ErrNotFound if there is no such patient.
	PatientParts(ctx context.Context, patientID string) (PartVersions, error)
	// PatientWithParts returns the record and the head of its change log
	// read together (one transaction; one round trip on Redis), so the
	// versions describe exactly the record returned. ErrNotFound if there
	// is no such patient. It is for readers that only look (the app's
	// reads): the record may be the one the store's cache of decoded
	// records holds, shared with every reader of the same stored bytes,
	// so the caller must change nothing it holds (slices, maps, nested
	// records); Clone it first to change it. Assigning a field of the
	// returned struct value is fine.
	PatientWithParts(ctx context.Context, patientID string) (Patient, PartVersions, error)
	// PatientChanges returns up to limit entries of the patient's change
	// log with Seq above after, oldest first, and the log's head.
	// ErrChangesTrimmed when entries after `after` were already dropped
	// (or after is beyond the head: a cursor from elsewhere);
	// ErrNotFound if there is no such patient.
	PatientChanges(ctx context.Context, patientID string, after int64, limit int) ([]Change, PartVersions, error)
}

// DiffPatient lists the changes from old to next that the change log
// follows, in a fixed order, with At set to at and Seq left zero.
// Record-wide bookkeeping (Version, UpdatedAt, CreatedAt) and the parts an
// app does not sync (grants, devices, follow-ups, reviews, self-reports)
// give no entry.
func DiffPatient(old, next Patient, at time.Time) []Change {
	var out []Change
	add := func(k ChangeKind, id string, removed bool) {
		out = append(out, Change{Kind: k, ItemID: id, Removed: removed, At: at})
	}
	if !sameProfile(old, next) {
		add(ChangeProfile, "", false)
	}
	diffItems(old.Medications, next.Medications, func(m Medication) string { return m.ID }, ChangeMedication, add)
	diffItems(old.Allergies, next.Allergies, func(a Allergy) string { return a.ID }, ChangeAllergy, add)
	diffItems(old.Fills, next.Fills, func(f Fill) string { return f.ID }, ChangeFill, add)
	if old.OtherInformation != next.OtherInformation {
		add(ChangePMLNotes, "", false)
	}
	diffItems(old.ActionItems, next.ActionItems, func(a ActionItem) string { return a.ID }, ChangeActionItem, add)
	if old.FollowUpPlan != next.FollowUpPlan || old.Questions != next.Questions {
		add(ChangePlanNotes, "", false)
	}
	diffItems(old.DoseSchedules, next.DoseSchedules, func(d DoseSchedule) string { return d.ID }, ChangeDoseSchedule, add)
	return out
}

// ThreadChange is the change-log entry of a change to thread t.
func ThreadChange(t Thread, at time.Time) Change {
	return Change{Kind: ChangeThread, ItemID: t.ID, At: at}
}

// diffItems reports each item added, changed or removed between old and
// next (matched by id), in next's order, then the removed ones.
func diffItems[T any](old, next []T, id func(T) string, kind ChangeKind, add func(ChangeKind, string, bool)) {
	before := make(map[string]int, len(old))
	for i, o := range old {
		before[id(o)] = i
	}
	seen := make(map[string]bool, len(next))
	for _, n := range next {
		k := id(n)
		seen[k] = true
		if i, ok := before[k]; !ok || !reflect.DeepEqual(old[i], n) {
			add(kind, k, false)
		}
	}
	for _, o := range old {
		if k := id(o); !seen[k] {
			add(kind, k, true)
		}
	}
}

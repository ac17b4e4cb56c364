package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

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

// ReminderKind is why a reminder is sent.
type ReminderKind string

// Reminder kinds.
const (
	ReminderDose       ReminderKind = "dose"
	ReminderRefill     ReminderKind = "refill"
	ReminderFollowUp   ReminderKind = "follow_up"
	ReminderMissedDose ReminderKind = "missed_dose" // the alert to caregivers
)

// Reminder is one occurrence in the due-time index: something to push to a
// patient (or, for a missed dose, to their caregivers) at DueAt.
//
// Its identity (Key) is the patient, the kind, the referenced object, the
// occurrence and the attempt: two Reminders with the same Key are the same
// index entry, and a Key is sent at most once within the dedupe window.
type Reminder struct {
	PatientID string
	Kind      ReminderKind
	// RefID names what the reminder is about: the dose schedule (dose and
	// missed dose), the medication (refill) or the follow-up.
	RefID string
	// Occurrence is the moment the reminder is about (the dose time, the
	// refill date, the follow-up time), at whole-second precision.
	Occurrence time.Time
	// Attempt counts snoozes: a snoozed dose comes back as Attempt+1.
	Attempt int
	// DueAt is when to send it. ClaimDueReminders returns the DueAt the
	// entry had before its first lease, also when an earlier lease ran
	// out, so that lateness is measured from when it was due.
	DueAt time.Time
	// Reclaimed is set by ClaimDueReminders when an earlier claim's lease
	// ran out before the reminder was settled: the dispatcher that held it
	// died, or lost the store for longer than the lease. It is not part of
	// the identity (Key).
	Reclaimed bool
}

// OccurrenceID is the public id of the occurrence, the same for every
// attempt: "<kind letter>.<ref id>.<unix seconds, base 36>".
func (r Reminder) OccurrenceID() string {
	return kindLetter[r.Kind] + "." + r.RefID + "." + strconv.FormatInt(r.Occurrence.Unix(), 36)
}

// Key is the reminder's identity in the index and its dedupe key:
// "<patient>|<occurrence id>" plus "|<attempt>" after a snooze.
func (r Reminder) Key() string {
	k := r.PatientID + "|" + r.OccurrenceID()
	if r.Attempt > 0 {
		k += "|" + strconv.Itoa(r.Attempt)
	}
	return k
}

var kindLetter = map[ReminderKind]string{ReminderDose: "d", ReminderRefill: "r", ReminderFollowUp: "f", ReminderMissedDose: "m"}

// ParseOccurrenceID splits an occurrence id into the kind, the referenced
// id and the occurrence time. It fails on anything OccurrenceID cannot
// produce.
func ParseOccurrenceID(id string) (ReminderKind, string, time.Time, error) {
	parts := strings.Split(id, ".")
	if len(parts) != 3 || parts[1] == "" {
		return "", "", time.Time{}, fmt.Errorf("occurrence id %q: want <kind>.<ref>.<time>", id)
	}
	var kind ReminderKind
	for k, l := range kindLetter {
		if l == parts[0] {
			kind = k
		}
	}
	if kind == "" {
		return "", "", time.Time{}, fmt.Errorf("occurrence id %q: unknown kind", id)
	}
	sec, err := strconv.ParseInt(parts[2], 36, 64)
	if err != nil || sec < 0 {
		return "", "", time.Time{}, fmt.Errorf("occurrence id %q: bad time", id)
	}
	return kind, parts[1], time.Unix(sec, 0).UTC(), nil
}

// ParseReminderKey is the inverse of Reminder.Key (DueAt is left zero).
func ParseReminderKey(key string) (Reminder, error) {
	parts := strings.Split(key, "|")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return Reminder{}, fmt.Errorf("reminder key %q: want <patient>|<occurrence>[|<attempt>]", key)
	}
	kind, ref, occ, err := ParseOccurrenceID(parts[1])
	if err != nil {
		return Reminder{}, err
	}
	r := Reminder{PatientID: parts[0], Kind: kind, RefID: ref, Occurrence: occ}
	if len(parts) == 3 {
		if r.Attempt, err = strconv.Atoi(parts[2]); err != nil || r.Attempt <= 0 {
			return Reminder{}, fmt.Errorf("reminder key %q: bad attempt", key)
		}
	}
	return r, nil
}

// Notification is one push that was sent, kept in a bounded per-patient
// history.
type Notification struct {
	PatientID    string
	Key          string // the Reminder.Key it delivered
	OccurrenceID string
	Kind         ReminderKind
	SentAt       time.Time
}

// DoseOutcome is what the patient did about a dose.
type DoseOutcome string

// Dose outcomes.
const (
	DoseTaken   DoseOutcome = "taken"
	DoseSkipped DoseOutcome = "skipped"
	DoseSnoozed DoseOutcome = "snoozed"
)

// DoseRecord is the confirmation of one dose occurrence (the latest one
// recorded wins).
type DoseRecord struct {
	PatientID    string
	OccurrenceID string
	Occurrence   time.Time
	Outcome      DoseOutcome
	SnoozedUntil time.Time // for DoseSnoozed
	RecordedBy   string    // patient or account id
	RecordedAt   time.Time
}

// ReminderContext is what the store holds about a batch of reminders.
type ReminderContext struct {
	Patients map[string]Patient // by patient id
	// Doses holds dose confirmations by DoseKey(patient, occurrence id).
	Doses map[string]DoseRecord
}

// DoseKey is the key of ReminderContext.Doses.
func DoseKey(patientID, occurrenceID string) string { return patientID + "|" + occurrenceID }

// DoseOccurrenceID is the occurrence id of the dose a dose or missed-dose
// reminder is about.
func (r Reminder) DoseOccurrenceID() string {
	return Reminder{Kind: ReminderDose, RefID: r.RefID, Occurrence: r.Occurrence}.OccurrenceID()
}

// Settlement is what SettleReminders records about one claimed batch.
type Settlement struct {
	Done []Reminder     // acknowledged: leave the index, remembered as sent
	Next []Reminder     // added, or moved to their DueAt
	Sent []Notification // added to their patients' histories
	// Now is the acknowledgement time; done keys are remembered until
	// Now+DedupeWindow.
	Now          time.Time
	DedupeWindow time.Duration
	// HistoryKeep bounds each patient's history (required when Sent is
	// not empty).
	HistoryKeep int
}

// Reminders is the durable due-time index that feeds the dispatcher, plus
// per-patient dose confirmations and notification history.
//
// The index is split into ReminderShards() shards; a patient's reminders
// all live in shard ReminderShard(patientID), so a shard can be worked by
// one dispatcher at a time without coordination and every step on it is
// atomic. Delivery is at least once: a claimed reminder whose lease runs out
// before it is acknowledged becomes due again; a Key acknowledged as sent
// is never claimed again within the dedupe window.
type Reminders interface {
	// ReminderShards is the number of index shards (fixed by the backend).
	ReminderShards() int
	// ReminderShard is the shard that holds patientID's reminders.
	ReminderShard(patientID string) int
	// ScheduleReminders removes cancel and then adds (or moves to its new
	// DueAt) every reminder of add. All reminders must belong to one
	// patient; the change is atomic. Cancelling an absent key is no error.
	ScheduleReminders(ctx context.Context, patientID string, add, cancel []Reminder) error
	// ClaimDueReminders leases up to limit reminders of shard whose DueAt
	// is at or before now, oldest first, until now+lease: no other claim
	// returns them while the lease stands. Reminders already acknowledged
	// as sent within the dedupe window are dropped instead of returned.
	ClaimDueReminders(ctx context.Context, shard int, now time.Time, lease time.Duration, limit int) ([]Reminder, error)
	// RenewReminderLeases extends to now+lease the leases of those of rs
	// (all of shard) that are still leased: claimed, not settled, not
	// rescheduled and with their lease not yet run out at now. A lease is
	// never shortened. It returns how many leases it extended; the others
	// are left alone (a lease that ran out may already be another
	// dispatcher's). The dispatcher calls it while a batch is being
	// worked, so that a short lease does not expire under a slow batch.
	RenewReminderLeases(ctx context.Context, shard int, rs []Reminder, now time.Time, lease time.Duration) (int, error)
	// AckReminders settles claimed reminders of one shard atomically: done
	// ones leave the index and are remembered as sent (keys kept for
	// dedupeWindow after now); next ones are added, or moved to their
	// DueAt when already present (a claimed reminder deferred, which is
	// then no longer leased: its next claim is not Reclaimed and reports
	// the new DueAt). ScheduleReminders likewise ends a lease of what it
	// adds or cancels.
	AckReminders(ctx context.Context, shard int, done, next []Reminder, now time.Time, dedupeWindow time.Duration) error
	// SettleReminders is AckReminders and AppendNotifications of one
	// shard's batch in one atomic step (one script or transaction): sent
	// (notifications of patients of shard) joins the history, trimmed to
	// keep per patient, together with the acknowledgement of done and next.
	SettleReminders(ctx context.Context, shard int, s Settlement) error
	// LoadReminderContext reads what sending rs needs: the records of
	// their patients and the confirmations of the dose occurrences their
	// dose and missed-dose reminders are about, in one round trip where
	// the backend can. A patient that does not exist and an unconfirmed
	// occurrence are simply absent. The patients are reminder views: a
	// backend may leave zero every field but ID, PharmacyID, Version,
	// TimeZone, QuietHours, PushNamesMedicine, PreferredLanguage, Fills, Grants, Devices,
	// DoseSchedules, FollowUps and, of Medications, ID, Name, Strength,
	// StartedOn, StoppedOn and Version.
	LoadReminderContext(ctx context.Context, rs []Reminder) (ReminderContext, error)

	// AppendNotifications adds to each patient's history and drops the
	// oldest beyond keep per patient. A Key already in the history is
	// stored once (its newest SentAt wins).
	AppendNotifications(ctx context.Context, ns []Notification, keep int) error
	// ListNotifications returns up to limit of the patient's notifications,
	// newest first.
	ListNotifications(ctx context.Context, patientID string, limit int) ([]Notification, error)

	// RecordDose stores the confirmation of an occurrence, replacing an
	// earlier one of the same occurrence, and drops the patient's records
	// of the oldest occurrences beyond keep.
	RecordDose(ctx context.Context, d DoseRecord, keep int) error
	// GetDose returns the confirmation of an occurrence or ErrNotFound.
	GetDose(ctx context.Context, patientID, occurrenceID string) (DoseRecord, error)
}

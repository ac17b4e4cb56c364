package dispatch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/schedule"
)

// Defaults of PlannerConfig.
const (
	DefaultRefillLead       = 7 * 24 * time.Hour
	DefaultRefillMinute     = 10 * 60 // 10:00 local
	DefaultMissedDoseWindow = 60 * time.Minute
)

// PlannerConfig configures a Planner. Zero values take the defaults.
type PlannerConfig struct {
	// RefillLead is how long before the supply runs out the refill
	// reminder fires (default 7 days; whole days count on the calendar).
	RefillLead time.Duration
	// RefillMinute is the local time of day of refill reminders, in
	// minutes after midnight (default 10:00).
	RefillMinute int
	// MissedDoseWindow is how long after a dose without confirmation the
	// caregivers holding missed-dose alerts are told (default 60 min).
	MissedDoseWindow time.Duration
}

func (c PlannerConfig) withDefaults() PlannerConfig {
	if c.RefillLead <= 0 {
		c.RefillLead = DefaultRefillLead
	}
	if c.RefillMinute <= 0 || c.RefillMinute >= 24*60 {
		c.RefillMinute = DefaultRefillMinute
	}
	if c.MissedDoseWindow <= 0 {
		c.MissedDoseWindow = DefaultMissedDoseWindow
	}
	return c
}

// Planner turns a patient's record into reminder occurrences, and keeps
// the due-time index in step when the record changes (schedules, fills,
// follow-ups, snoozes). The dispatcher checks every reminder against the
// record again when it comes due, so a change the index missed never sends
// a stale reminder.
type Planner struct {
	store store.Reminders
	cfg   PlannerConfig
	zones *schedule.Zones
}

// NewPlanner returns a Planner writing to st.
func NewPlanner(st store.Reminders, cfg PlannerConfig) *Planner {
	return &Planner{store: st, cfg: cfg.withDefaults(), zones: &schedule.Zones{}}
}

// Config returns the planner's configuration with defaults applied.
func (p *Planner) Config() PlannerConfig { return p.cfg }

// NextDose is the first reminder of schedule s strictly after after.
func (p *Planner) NextDose(pt store.Patient, s store.DoseSchedule, after time.Time) (store.Reminder, bool) {
	t, ok := schedule.NextDose(s, p.zones.Get(pt.TimeZone), after)
	if !ok {
		return store.Reminder{}, false
	}
	return store.Reminder{PatientID: pt.ID, Kind: store.ReminderDose, RefID: s.ID, Occurrence: t, DueAt: t}, true
}

// Refill is the refill reminder of a medicine, from its fills; false
// without fills or for a stopped medicine. A reminder whose time has
// passed is due at once (DueAt is not moved: the caller's clock decides).
func (p *Planner) Refill(pt store.Patient, medicationID string) (store.Reminder, bool) {
	i := slices.IndexFunc(pt.Medications, func(m store.Medication) bool { return m.ID == medicationID })
	if i < 0 || !pt.Medications[i].Active() {
		return store.Reminder{}, false
	}
	return p.refillFrom(pt, medicationID, clinical.FillsOf(pt.Fills, medicationID))
}

func (p *Planner) refillFrom(pt store.Patient, medicationID string, fills []store.Fill) (store.Reminder, bool) {
	r, ok := schedule.RefillDue(fills, p.cfg.RefillLead, p.cfg.RefillMinute, p.zones.Get(pt.TimeZone))
	if !ok {
		return store.Reminder{}, false
	}
	at := r.RemindAt.Truncate(time.Second)
	return store.Reminder{PatientID: pt.ID, Kind: store.ReminderRefill, RefID: medicationID, Occurrence: at, DueAt: at}, true
}

// FollowUp is the reminder of a pharmacist's follow-up.
func (p *Planner) FollowUp(pt store.Patient, f store.FollowUp) store.Reminder {
	at := f.DueAt.Truncate(time.Second)
	return store.Reminder{PatientID: pt.ID, Kind: store.ReminderFollowUp, RefID: f.ID, Occurrence: at, DueAt: at}
}

// MissedDoseCheck is the check, window after a dose, whether it was
// confirmed.
func (p *Planner) MissedDoseCheck(dose store.Reminder) store.Reminder {
	return store.Reminder{PatientID: dose.PatientID, Kind: store.ReminderMissedDose, RefID: dose.RefID, Occurrence: dose.Occurrence,
		DueAt: dose.Occurrence.Add(p.cfg.MissedDoseWindow)}
}

// Upcoming lists the patient's next reminders after now, by time: up to
// perSchedule doses of each schedule, each active medicine's refill and
// each follow-up not yet past, at most limit in all.
func (p *Planner) Upcoming(pt store.Patient, now time.Time, perSchedule, limit int) []store.Reminder {
	var out []store.Reminder
	loc := p.zones.Get(pt.TimeZone)
	for _, s := range pt.DoseSchedules {
		for _, t := range schedule.Doses(s, loc, now, perSchedule) {
			out = append(out, store.Reminder{PatientID: pt.ID, Kind: store.ReminderDose, RefID: s.ID, Occurrence: t, DueAt: t})
		}
	}
	for _, m := range pt.Medications {
		if r, ok := p.Refill(pt, m.ID); ok && !r.Occurrence.Before(now.Add(-24*time.Hour)) {
			out = append(out, r)
		}
	}
	for _, f := range pt.FollowUps {
		if !f.DueAt.Before(now) {
			out = append(out, p.FollowUp(pt, f))
		}
	}
	slices.SortStableFunc(out, func(a, b store.Reminder) int { return a.DueAt.Compare(b.DueAt) })
	return out[:min(limit, len(out))]
}

// SchedulesChanged re-plans dose reminders after the patient's dose
// schedules changed from before to after: the next dose of every old
// schedule is cancelled and the next of every current one scheduled.
func (p *Planner) SchedulesChanged(ctx context.Context, before, after store.Patient, now time.Time) error {
	var add, cancel []store.Reminder
	for _, s := range before.DoseSchedules {
		if r, ok := p.NextDose(before, s, now); ok {
			cancel = append(cancel, r)
		}
	}
	for _, s := range after.DoseSchedules {
		if r, ok := p.NextDose(after, s, now); ok {
			add = append(add, r)
		}
	}
	if err := p.store.ScheduleReminders(ctx, after.ID, add, cancel); err != nil {
		return fmt.Errorf("dispatch.SchedulesChanged: %w", err)
	}
	return nil
}

// RefillChanged re-plans the refill reminder of a medicine after a fill:
// the reminder computed from the previous fills is cancelled and the one
// from the current fills scheduled (due at once when already past).
func (p *Planner) RefillChanged(ctx context.Context, pt store.Patient, medicationID string, previous []store.Fill, now time.Time) error {
	var add, cancel []store.Reminder
	if old, ok := p.refillFrom(pt, medicationID, clinical.FillsOf(previous, medicationID)); ok {
		cancel = append(cancel, old)
	}
	if r, ok := p.Refill(pt, medicationID); ok {
		r.DueAt = later(r.DueAt, now)
		add = append(add, r) // cancelled first, so an unchanged reminder stays

	}
	if err := p.store.ScheduleReminders(ctx, pt.ID, add, cancel); err != nil {
		return fmt.Errorf("dispatch.RefillChanged: %w", err)
	}
	return nil
}

// FollowUpScheduled schedules the reminder of a new follow-up.
func (p *Planner) FollowUpScheduled(ctx context.Context, pt store.Patient, f store.FollowUp, now time.Time) error {
	r := p.FollowUp(pt, f)
	r.DueAt = later(r.DueAt, now)
	if err := p.store.ScheduleReminders(ctx, pt.ID, []store.Reminder{r}, nil); err != nil {
		return fmt.Errorf("dispatch.FollowUpScheduled: %w", err)
	}
	return nil
}

// Snoozed brings a dose reminder back at until as the occurrence's next
// attempt (a new dedupe key, so it is sent again).
func (p *Planner) Snoozed(ctx context.Context, d store.DoseRecord, attempt int) error {
	kind, ref, occ, err := store.ParseOccurrenceID(d.OccurrenceID)
	if err != nil || kind != store.ReminderDose {
		return fmt.Errorf("dispatch.Snoozed: not a dose occurrence: %q", d.OccurrenceID)
	}
	r := store.Reminder{PatientID: d.PatientID, Kind: kind, RefID: ref, Occurrence: occ, Attempt: attempt, DueAt: d.SnoozedUntil}
	if err := p.store.ScheduleReminders(ctx, d.PatientID, []store.Reminder{r}, nil); err != nil {
		return fmt.Errorf("dispatch.Snoozed: %w", err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/dispatch"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Reminders and push devices. Who may do what:
//
//   - devices: the patient registers their phones on their record; a
//     caregiver whose grant includes missed-dose alerts registers their own
//     phone, which is kept on the caregiver's account (one device serves
//     every patient they care for);
//   - dose schedules and dose confirmations: the patient, or a caregiver
//     with manage_reminders;
//   - upcoming reminders, notification history, schedules: the patient, or
//     a caregiver with view_medicines (they name medicines).

// ReminderPlanner keeps the reminder index in step with the record. It is
// implemented by *dispatch.Planner; nil in Config means a planner with the
// default refill lead and missed-dose window.
type ReminderPlanner interface {
	SchedulesChanged(ctx context.Context, before, after store.Patient, now time.Time) error
	RefillChanged(ctx context.Context, pt store.Patient, medicationID string, previous []store.Fill, now time.Time) error
	FollowUpScheduled(ctx context.Context, pt store.Patient, f store.FollowUp, now time.Time) error
	Snoozed(ctx context.Context, d store.DoseRecord, attempt int) error
	Upcoming(pt store.Patient, now time.Time, perSchedule, limit int) []store.Reminder
}

// Limits of the reminder API.
const (
	maxDevices         = 10  // per patient or caregiver; the oldest goes
	maxDoseSchedules   = 50  // per patient
	doseRecordsKept    = 600 // per patient: about 180 days of three doses
	defaultSnooze      = 10 * time.Minute
	minSnooze          = 5 * time.Minute
	doseRecordLookback = 7 * 24 * time.Hour
)

func (c Config) reminders() ReminderPlanner {
	if c.Reminders != nil {
		return c.Reminders
	}
	return dispatch.NewPlanner(c.Store, dispatch.PlannerConfig{})
}

// replan logs instead of failing: the record change is already stored and
// the dispatcher re-checks every reminder against the record.
func (c Config) replan(ctx context.Context, what string, err error) {
	if err != nil {
		c.Logger.WarnContext(ctx, "reminder index not updated", slog.String("change", what), slog.String("error", err.Error()))
	}
}

// refillChanged is RecordFill's hook: a new fill (re)schedules the refill
// reminder and cancels the one computed from the earlier fills.
func (c Config) refillChanged(ctx context.Context, pt store.Patient, f store.Fill) {
	previous := slices.DeleteFunc(slices.Clone(pt.Fills), func(x store.Fill) bool { return x.ID == f.ID })
	c.replan(ctx, "fill", c.reminders().RefillChanged(ctx, pt, f.MedicationID, previous, c.Now()))
}

func platformOf(p mtmv1.DevicePlatform) string {
	if p == mtmv1.DevicePlatform_DEVICE_PLATFORM_IOS {
		return "ios"
	}
	return "android"
}

// addDevice registers a token in devs: the same token again keeps its
// device id; beyond maxDevices the oldest registration goes.
func addDevice(devs []store.Device, d store.Device) ([]store.Device, string) {
	for i := range devs {
		if devs[i].FCMToken == d.FCMToken {
			d.ID = devs[i].ID
			devs[i] = d
			return devs, d.ID
		}
	}
	devs = append(devs, d)
	if len(devs) > maxDevices {
		devs = devs[len(devs)-maxDevices:]
	}
	return devs, d.ID
}

// RegisterDevice implements mtm.v1.PatientService.RegisterDevice.
func (s *PatientService) RegisterDevice(ctx context.Context, req *connect.Request[mtmv1.RegisterDeviceRequest]) (*connect.Response[mtmv1.RegisterDeviceResponse], error) {
	c, m := s.cfg, req.Msg
	id, err := auth.NewID("dv")
	if err != nil {
		return nil, err
	}
	dev := store.Device{ID: id, FCMToken: m.GetFcmToken(), Platform: platformOf(m.GetPlatform()), AppVersion: m.GetAppVersion(),
		Locale: m.GetLocale(), RegisteredAt: c.Now()}
	p, err := patientSide(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role == store.RoleCaregiver {
		if _, _, err := c.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeMissedDoseAlerts); err != nil {
			return nil, err
		}
		_, err = c.Store.UpdateAccount(ctx, p.Subject, func(a store.Account) (store.Account, error) {
			a.Devices, id = addDevice(a.Devices, dev)
			return a, nil
		})
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&mtmv1.RegisterDeviceResponse{DeviceId: id}), nil
	}
	_, err = c.updateForPatientSide(ctx, m.GetPatientId(), scopeSelf, func(_ auth.Principal, pt *store.Patient) error {
		pt.Devices, id = addDevice(pt.Devices, dev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	audit.Touch(ctx, m.GetPatientId(), id)
	return connect.NewResponse(&mtmv1.RegisterDeviceResponse{DeviceId: id}), nil
}

// UnregisterDevice implements mtm.v1.PatientService.UnregisterDevice. A
// device that is not registered to the caller's side (another patient's,
// or one already removed) is not_found, like every record the caller
// cannot touch; a phone that retries after a lost answer can take
// not_found as done.
func (s *PatientService) UnregisterDevice(ctx context.Context, req *connect.Request[mtmv1.UnregisterDeviceRequest]) (*connect.Response[mtmv1.UnregisterDeviceResponse], error) {
	c, m := s.cfg, req.Msg
	drop := func(devs []store.Device) []store.Device {
		return slices.DeleteFunc(devs, func(d store.Device) bool { return d.ID == m.GetDeviceId() })
	}
	p, err := patientSide(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role == store.RoleCaregiver {
		if _, _, err := c.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeMissedDoseAlerts); err != nil {
			return nil, err
		}
		if _, err := c.Store.UpdateAccount(ctx, p.Subject, func(a store.Account) (store.Account, error) {
			n := len(a.Devices)
			if a.Devices = drop(a.Devices); len(a.Devices) == n {
				return a, errDeviceNotFound
			}
			return a, nil
		}); err != nil {
			return nil, err
		}
		return connect.NewResponse(&mtmv1.UnregisterDeviceResponse{}), nil
	}
	_, err = c.updateForPatientSide(ctx, m.GetPatientId(), scopeSelf, func(_ auth.Principal, pt *store.Patient) error {
		n := len(pt.Devices)
		if pt.Devices = drop(pt.Devices); len(pt.Devices) == n {
			return errDeviceNotFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.UnregisterDeviceResponse{}), nil
}

// doseScheduleFields checks a SetDoseSchedule request beyond what the
// proto rules can.
func (c Config) doseScheduleFields(m *mtmv1.SetDoseScheduleRequest) (store.DoseSchedule, error) {
	var s store.DoseSchedule
	var err error
	if m.GetStartOn() != "" {
		if s.StartOn, err = store.ParseDate(m.GetStartOn()); err != nil {
			return s, invalidField("start_on", "not a calendar date (YYYY-MM-DD)")
		}
	}
	if m.GetEndOn() != "" {
		if s.EndOn, err = store.ParseDate(m.GetEndOn()); err != nil {
			return s, invalidField("end_on", "not a calendar date (YYYY-MM-DD)")
		}
		if !s.StartOn.IsZero() && s.EndOn.Before(s.StartOn) {
			return s, invalidField("end_on", "must not be before start_on")
		}
	}
	s.MedicationID = m.GetMedicationId()
	for _, t := range m.GetTimesOfDay() {
		s.TimesOfDay = append(s.TimesOfDay, int(t))
	}
	slices.Sort(s.TimesOfDay)
	for _, d := range m.GetDaysOfWeek() {
		s.DaysOfWeek = append(s.DaysOfWeek, time.Weekday(d))
	}
	slices.Sort(s.DaysOfWeek)
	return s, nil
}

func doseScheduleToProto(s store.DoseSchedule) *mtmv1.DoseSchedule {
	out := &mtmv1.DoseSchedule{Id: s.ID, MedicationId: s.MedicationID, StartOn: s.StartOn.String(), EndOn: s.EndOn.String()}
	for _, t := range s.TimesOfDay {
		out.TimesOfDay = append(out.TimesOfDay, int32(t))
	}
	for _, d := range s.DaysOfWeek {
		out.DaysOfWeek = append(out.DaysOfWeek, int32(d))
	}
	return out
}

// SetDoseSchedule implements mtm.v1.PatientService.SetDoseSchedule.
func (s *PatientService) SetDoseSchedule(ctx context.Context, req *connect.Request[mtmv1.SetDoseScheduleRequest]) (*connect.Response[mtmv1.SetDoseScheduleResponse], error) {
	c, m := s.cfg, req.Msg
	sched, err := c.doseScheduleFields(m)
	if err != nil {
		return nil, err
	}
	sched.ID = m.GetScheduleId()
	if sched.ID == "" {
		if sched.ID, err = auth.NewID("ds"); err != nil {
			return nil, err
		}
	}
	var before store.Patient
	after, err := c.updateForPatientSide(ctx, m.GetPatientId(), store.ScopeManageReminders, func(_ auth.Principal, pt *store.Patient) error {
		before = *pt
		before.DoseSchedules = slices.Clone(pt.DoseSchedules)
		i := slices.IndexFunc(pt.Medications, func(x store.Medication) bool { return x.ID == sched.MedicationID })
		if i < 0 || !pt.Medications[i].Active() {
			return notFound("medication")
		}
		j := slices.IndexFunc(pt.DoseSchedules, func(x store.DoseSchedule) bool { return x.ID == sched.ID })
		switch {
		case j >= 0:
			pt.DoseSchedules[j] = sched
		case m.GetScheduleId() != "":
			return notFound("dose schedule")
		case len(pt.DoseSchedules) >= maxDoseSchedules:
			return invalidField("patient_id", "too many dose schedules")
		default:
			pt.DoseSchedules = append(pt.DoseSchedules, sched)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	audit.Touch(ctx, after.ID, sched.ID)
	c.replan(ctx, "dose schedule", c.reminders().SchedulesChanged(ctx, before, after, c.Now()))
	return connect.NewResponse(&mtmv1.SetDoseScheduleResponse{Schedule: doseScheduleToProto(sched)}), nil
}

// ListDoseSchedules implements mtm.v1.PatientService.ListDoseSchedules.
func (s *PatientService) ListDoseSchedules(ctx context.Context, req *connect.Request[mtmv1.ListDoseSchedulesRequest]) (*connect.Response[mtmv1.ListDoseSchedulesResponse], error) {
	_, pt, err := s.cfg.loadForPatientSide(ctx, req.Msg.GetPatientId(), store.ScopeViewMedicines)
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListDoseSchedulesResponse{}
	for _, d := range pt.DoseSchedules {
		out.Schedules = append(out.Schedules, doseScheduleToProto(d))
	}
	return connect.NewResponse(out), nil
}

// DeleteDoseSchedule implements mtm.v1.PatientService.DeleteDoseSchedule.
// A schedule that is not the patient's (another patient's, or one already
// deleted) is not_found, like every record the caller cannot touch.
func (s *PatientService) DeleteDoseSchedule(ctx context.Context, req *connect.Request[mtmv1.DeleteDoseScheduleRequest]) (*connect.Response[mtmv1.DeleteDoseScheduleResponse], error) {
	c, m := s.cfg, req.Msg
	var before store.Patient
	after, err := c.updateForPatientSide(ctx, m.GetPatientId(), store.ScopeManageReminders, func(_ auth.Principal, pt *store.Patient) error {
		before = *pt
		before.DoseSchedules = slices.Clone(pt.DoseSchedules)
		n := len(pt.DoseSchedules)
		if pt.DoseSchedules = slices.DeleteFunc(pt.DoseSchedules, func(x store.DoseSchedule) bool { return x.ID == m.GetScheduleId() }); len(pt.DoseSchedules) == n {
			return notFound("dose schedule")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.replan(ctx, "dose schedule", c.reminders().SchedulesChanged(ctx, before, after, c.Now()))
	return connect.NewResponse(&mtmv1.DeleteDoseScheduleResponse{}), nil
}

// RecordDose implements mtm.v1.PatientService.RecordDose. The occurrence
// must name one of the patient's schedules and a time in the last 7 days or
// the next 24 hours; snoozed brings the reminder back after snooze_minutes
// (default 10, at least 5).
func (s *PatientService) RecordDose(ctx context.Context, req *connect.Request[mtmv1.RecordDoseRequest]) (*connect.Response[mtmv1.RecordDoseResponse], error) {
	c, m := s.cfg, req.Msg
	p, pt, err := c.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeManageReminders)
	if err != nil {
		return nil, err
	}
	kind, ref, occ, err := store.ParseOccurrenceID(m.GetOccurrenceId())
	if err != nil || kind != store.ReminderDose {
		return nil, invalidField("occurrence_id", "is not the id of a dose; send the occurrence_id of a dose reminder (ListUpcomingReminders, ListNotificationHistory or the push)")
	}
	// The schedule must exist; the time is not re-derived from it, so a
	// dose stays confirmable after the patient changes time zone.
	if !slices.ContainsFunc(pt.DoseSchedules, func(x store.DoseSchedule) bool { return x.ID == ref }) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("dose occurrence not found: no dose schedule of this patient has the id in occurrence_id"))
	}
	now := c.Now()
	if occ.Before(now.Add(-doseRecordLookback)) || occ.After(now.Add(24*time.Hour)) {
		return nil, invalidField("occurrence_id", fmt.Sprintf("names the dose due at %s; a dose can be recorded from 7 days before now until 24 hours ahead",
			occ.UTC().Format(time.RFC3339)))
	}
	planner := c.reminders()
	rec := store.DoseRecord{PatientID: pt.ID, OccurrenceID: m.GetOccurrenceId(), Occurrence: occ, RecordedBy: p.Subject, RecordedAt: now}
	switch m.GetOutcome() {
	case mtmv1.DoseOutcome_DOSE_OUTCOME_TAKEN:
		rec.Outcome = store.DoseTaken
	case mtmv1.DoseOutcome_DOSE_OUTCOME_SKIPPED:
		rec.Outcome = store.DoseSkipped
	case mtmv1.DoseOutcome_DOSE_OUTCOME_SNOOZED:
		rec.Outcome = store.DoseSnoozed
		snooze := time.Duration(m.GetSnoozeMinutes()) * time.Minute
		if snooze == 0 {
			snooze = defaultSnooze
		}
		if snooze < minSnooze {
			return nil, invalidField("snooze_minutes", "must be between 5 and 240")
		}
		rec.SnoozedUntil = later(now, occ).Add(snooze).Truncate(time.Second) // a dose snoozed early comes back after its time
	default:
		return nil, invalidField("outcome", "unknown outcome")
	}
	audit.Touch(ctx, pt.ID, rec.OccurrenceID)
	if err := c.Store.RecordDose(ctx, rec, doseRecordsKept); err != nil {
		return nil, err
	}
	if rec.Outcome == store.DoseSnoozed {
		// Each snooze is a new attempt of the occurrence (its own dedupe key).
		attempt := int(rec.SnoozedUntil.Sub(occ) / time.Minute) // ≥ 5
		if err := planner.Snoozed(ctx, rec, attempt); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&mtmv1.RecordDoseResponse{}), nil
}

var kindToProto = map[store.ReminderKind]mtmv1.ReminderKind{
	store.ReminderDose:       mtmv1.ReminderKind_REMINDER_KIND_DOSE,
	store.ReminderRefill:     mtmv1.ReminderKind_REMINDER_KIND_REFILL,
	store.ReminderFollowUp:   mtmv1.ReminderKind_REMINDER_KIND_FOLLOW_UP,
	store.ReminderMissedDose: mtmv1.ReminderKind_REMINDER_KIND_MISSED_DOSE,
}

func reminderPage(n int32, def int) int {
	if n <= 0 {
		return def
	}
	return int(n)
}

// ListUpcomingReminders implements mtm.v1.PatientService.ListUpcomingReminders:
// the next doses of each schedule, refills and follow-ups, by time.
func (s *PatientService) ListUpcomingReminders(ctx context.Context, req *connect.Request[mtmv1.ListUpcomingRemindersRequest]) (*connect.Response[mtmv1.ListUpcomingRemindersResponse], error) {
	c, m := s.cfg, req.Msg
	_, pt, err := c.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeViewMedicines)
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListUpcomingRemindersResponse{}
	for _, r := range c.reminders().Upcoming(pt, c.Now(), 3, reminderPage(m.GetPageSize(), 20)) {
		med := r.RefID
		if r.Kind == store.ReminderDose {
			i := slices.IndexFunc(pt.DoseSchedules, func(x store.DoseSchedule) bool { return x.ID == r.RefID })
			med = pt.DoseSchedules[i].MedicationID
		} else if r.Kind != store.ReminderRefill {
			med = ""
		}
		out.Reminders = append(out.Reminders, &mtmv1.Reminder{OccurrenceId: r.OccurrenceID(), Kind: kindToProto[r.Kind], DueAt: ts(r.DueAt), MedicationId: med})
	}
	return connect.NewResponse(out), nil
}

// ListNotificationHistory implements mtm.v1.PatientService.ListNotificationHistory.
func (s *PatientService) ListNotificationHistory(ctx context.Context, req *connect.Request[mtmv1.ListNotificationHistoryRequest]) (*connect.Response[mtmv1.ListNotificationHistoryResponse], error) {
	c, m := s.cfg, req.Msg
	_, pt, err := c.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeViewMedicines)
	if err != nil {
		return nil, err
	}
	ns, err := c.Store.ListNotifications(ctx, pt.ID, reminderPage(m.GetPageSize(), 50))
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListNotificationHistoryResponse{}
	for _, n := range ns {
		out.Notifications = append(out.Notifications, &mtmv1.SentNotification{OccurrenceId: n.OccurrenceID, Kind: kindToProto[n.Kind], SentAt: ts(n.SentAt)})
	}
	return connect.NewResponse(out), nil
}

// ScheduleFollowUp implements mtm.v1.CareService.ScheduleFollowUp.
func (s *CareService) ScheduleFollowUp(ctx context.Context, req *connect.Request[mtmv1.ScheduleFollowUpRequest]) (*connect.Response[mtmv1.ScheduleFollowUpResponse], error) {
	c, m := s.cfg, req.Msg
	due := m.GetDueAt().AsTime()
	if now := c.Now(); due.Before(now.AddDate(-1, 0, 0)) || due.After(now.AddDate(2, 0, 0)) {
		return nil, invalidField("due_at", "must be within two years from now")
	}
	id, err := auth.NewID("fu")
	if err != nil {
		return nil, err
	}
	f := store.FollowUp{ID: id, DueAt: due.Truncate(time.Second), ActionItemID: m.GetActionItemId(), CreatedAt: c.Now()}
	pt, err := c.updateForCare(ctx, m.GetPatientId(), func(p auth.Principal, pt *store.Patient) error {
		if f.ActionItemID != "" && !slices.ContainsFunc(pt.ActionItems, func(a store.ActionItem) bool { return a.ID == f.ActionItemID }) {
			return notFound("action item")
		}
		f.CreatedBy = p.Subject
		pt.FollowUps = append(pt.FollowUps, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	audit.Touch(ctx, pt.ID, f.ID)
	c.replan(ctx, "follow-up", c.reminders().FollowUpScheduled(ctx, pt, f, c.Now()))
	return connect.NewResponse(&mtmv1.ScheduleFollowUpResponse{FollowUpId: f.ID}), nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

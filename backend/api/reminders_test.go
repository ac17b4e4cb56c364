package api_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestReminderFlow: a patient registers a phone and a schedule, a
// pharmacist records a fill and a follow-up; the upcoming list shows all
// three kinds, the due-time index holds them, a caregiver with missed-dose
// alerts registers a phone on their own account, and a snooze brings the
// dose back.
func TestReminderFlow(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_1", "rph@one.test")
		pt := e.enroll(rph, "Rita")
		care, me := e.careClient(rph), e.patientClient(pt.token)
		med, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id, Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "with breakfast"}}))
		if err != nil {
			t.Fatal(err)
		}
		medID := med.Msg.GetMedication().GetId()
		dev, err := me.RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: pt.id, FcmToken: "tok-rita", Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_IOS}))
		if err != nil {
			t.Fatal(err)
		}
		again, err := me.RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: pt.id, FcmToken: "tok-rita", Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_IOS, AppVersion: "2.0"}))
		if err != nil || again.Msg.GetDeviceId() != dev.Msg.GetDeviceId() {
			t.Fatalf("re-registering the same token: %v, %v; want the same device id", again, err)
		}
		sched, err := me.SetDoseSchedule(ctx, req(&mtmv1.SetDoseScheduleRequest{PatientId: pt.id, MedicationId: medID, TimesOfDay: []int32{8 * 60, 20 * 60}}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := care.RecordFill(ctx, req(&mtmv1.RecordFillRequest{PatientId: pt.id, MedicationId: medID, FilledOn: "2026-03-01", DaysSupply: 30})); err != nil {
			t.Fatal(err)
		}
		due := time.Date(2026, 3, 9, 16, 0, 0, 0, time.UTC)
		if _, err := care.ScheduleFollowUp(ctx, req(&mtmv1.ScheduleFollowUpRequest{PatientId: pt.id, DueAt: timestamppb.New(due)})); err != nil {
			t.Fatal(err)
		}
		up, err := me.ListUpcomingReminders(ctx, req(&mtmv1.ListUpcomingRemindersRequest{PatientId: pt.id, PageSize: 20}))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[mtmv1.ReminderKind]int{}
		for _, r := range up.Msg.GetReminders() {
			kinds[r.GetKind()]++
		}
		if kinds[mtmv1.ReminderKind_REMINDER_KIND_DOSE] != 3 || kinds[mtmv1.ReminderKind_REMINDER_KIND_REFILL] != 1 || kinds[mtmv1.ReminderKind_REMINDER_KIND_FOLLOW_UP] != 1 {
			t.Fatalf("upcoming by kind %v, want the next 3 doses, 1 refill, 1 follow-up", kinds)
		}
		// The index holds tonight's 20:00 dose (it is 09:00 in Chicago).
		claimed, err := e.store.ClaimDueReminders(ctx, e.store.ReminderShard(pt.id), e.clock.Now().Add(11*time.Hour), time.Minute, 10)
		if err != nil || len(claimed) != 1 || claimed[0].Kind != store.ReminderDose || claimed[0].RefID != sched.Msg.GetSchedule().GetId() {
			t.Fatalf("claimed %+v, %v; want tonight's dose", claimed, err)
		}
		occ := claimed[0].OccurrenceID()
		if _, err := me.RecordDose(ctx, req(&mtmv1.RecordDoseRequest{PatientId: pt.id, OccurrenceId: occ, Outcome: mtmv1.DoseOutcome_DOSE_OUTCOME_SNOOZED, SnoozeMinutes: 15})); err != nil {
			t.Fatal(err)
		}
		back, err := e.store.ClaimDueReminders(ctx, e.store.ReminderShard(pt.id), e.clock.Now().Add(11*time.Hour+15*time.Minute), time.Minute, 10)
		snoozed := slices.IndexFunc(back, func(r store.Reminder) bool { return r.OccurrenceID() == occ && r.Attempt > 0 })
		if err != nil || snoozed < 0 || !back[snoozed].DueAt.Equal(claimed[0].Occurrence.Add(15*time.Minute)) {
			t.Fatalf("after the snooze claimed %+v, %v; want the same occurrence as a new attempt 15 minutes later", back, err)
		}
		// A dose of no schedule is not found (it was answered with the
		// time window, which sent app developers looking at their clocks).
		_, err = me.RecordDose(ctx, req(&mtmv1.RecordDoseRequest{PatientId: pt.id, OccurrenceId: "d.ds_unknown.tbw1c0", Outcome: mtmv1.DoseOutcome_DOSE_OUTCOME_TAKEN}))
		wantCode(t, err, connect.CodeNotFound)

		cg := e.caregiver(pt, "alerts@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_MISSED_DOSE_ALERTS})
		if _, err := e.patientClient(cg.token).RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: pt.id, FcmToken: "tok-cg", Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_ANDROID})); err != nil {
			t.Fatal(err)
		}
		acc, err := e.store.GetAccount(ctx, cg.id)
		if err != nil || len(acc.Devices) != 1 || acc.Devices[0].FCMToken != "tok-cg" {
			t.Fatalf("caregiver account devices %+v, %v", acc.Devices, err)
		}
		rec, err := e.store.GetPatient(ctx, pt.id)
		if err != nil || len(rec.Devices) != 1 {
			t.Fatalf("patient devices %+v, %v: want only the patient's phone", rec.Devices, err)
		}
		// A caregiver who may only view medicines cannot change schedules.
		viewer := e.caregiver(pt, "viewer@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
		_, err = e.patientClient(viewer.token).DeleteDoseSchedule(ctx, req(&mtmv1.DeleteDoseScheduleRequest{PatientId: pt.id, ScheduleId: sched.Msg.GetSchedule().GetId()}))
		wantCode(t, err, connect.CodeNotFound)
		if _, err := me.DeleteDoseSchedule(ctx, req(&mtmv1.DeleteDoseScheduleRequest{PatientId: pt.id, ScheduleId: sched.Msg.GetSchedule().GetId()})); err != nil {
			t.Fatal(err)
		}
		list, err := me.ListDoseSchedules(ctx, req(&mtmv1.ListDoseSchedulesRequest{PatientId: pt.id}))
		if err != nil || len(list.Msg.GetSchedules()) != 0 {
			t.Fatalf("schedules after delete: %v, %v", list, err)
		}
	})
}

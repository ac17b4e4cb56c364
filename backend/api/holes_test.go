package api_test

import (
	"context"
	"slices"
	"testing"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestDeletingAnotherPatientsRecordsIsNotFound: a patient naming their own
// record with another patient's device or dose schedule id, or an id that
// does not exist, gets not_found, like every other call, and nothing
// changes.
func TestDeletingAnotherPatientsRecordsIsNotFound(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_d", "rph@d.test")
		ann, bob := e.enroll(rph, "Ann"), e.enroll(rph, "Bob")
		med, err := e.careClient(rph).AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: bob.id, Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "twice a day"}}))
		if err != nil {
			t.Fatal(err)
		}
		bobDevice, err := e.patientClient(bob.token).RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: bob.id, FcmToken: "bob-phone", Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_IOS}))
		if err != nil {
			t.Fatal(err)
		}
		bobSchedule, _ := matrixDoseSchedule(t, e, bob, med.Msg.GetMedication().GetId())
		annClient := e.patientClient(ann.token)
		for _, id := range []string{bobDevice.Msg.GetDeviceId(), "dv_missing"} {
			_, err := annClient.UnregisterDevice(ctx, req(&mtmv1.UnregisterDeviceRequest{PatientId: ann.id, DeviceId: id}))
			wantCode(t, err, connect.CodeNotFound)
		}
		for _, id := range []string{bobSchedule, "ds_missing"} {
			_, err := annClient.DeleteDoseSchedule(ctx, req(&mtmv1.DeleteDoseScheduleRequest{PatientId: ann.id, ScheduleId: id}))
			wantCode(t, err, connect.CodeNotFound)
		}
		bobNow, err := e.store.GetPatient(ctx, bob.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(bobNow.Devices) != 1 || len(bobNow.DoseSchedules) != 1 {
			t.Fatalf("Bob's record changed: %d devices, %d schedules", len(bobNow.Devices), len(bobNow.DoseSchedules))
		}
		// His own deletes work, once.
		if _, err := e.patientClient(bob.token).DeleteDoseSchedule(ctx, req(&mtmv1.DeleteDoseScheduleRequest{PatientId: bob.id, ScheduleId: bobSchedule})); err != nil {
			t.Fatalf("own delete: %v", err)
		}
		_, err = e.patientClient(bob.token).DeleteDoseSchedule(ctx, req(&mtmv1.DeleteDoseScheduleRequest{PatientId: bob.id, ScheduleId: bobSchedule}))
		wantCode(t, err, connect.CodeNotFound)
	})
}

// TestReportSelfMedicationNeedsTheMessageScope: reporting a self-started
// medicine adds a report for the pharmacist, so a caregiver who may only
// read the medication list cannot; one with the message scope can.
func TestReportSelfMedicationNeedsTheMessageScope(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_r", "rph@r.test")
		pt := e.enroll(rph, "Ann")
		reader := e.caregiver(pt, "reader@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
		writer := e.caregiver(pt, "writer@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_MESSAGE})
		report := func(token string) error {
			_, err := e.patientClient(token).ReportSelfMedication(ctx, req(&mtmv1.ReportSelfMedicationRequest{PatientId: pt.id,
				Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_HERBAL, Name: "St John's wort"}))
			return err
		}
		wantCode(t, report(reader.token), connect.CodeNotFound)
		if err := report(writer.token); err != nil {
			t.Fatalf("caregiver with the message scope: %v", err)
		}
		if _, err := e.patientClient(reader.token).GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: pt.id})); err != nil {
			t.Fatalf("the reader still reads the list: %v", err)
		}
	})
}

// TestHumanTextAndDatesAreClean: names and free text refuse control,
// bidirectional-override and zero-width characters and blank values;
// dates refuse days outside 1900-01-01..2200-12-31 and birth dates in the
// future; each with invalid_argument naming the field. Good text in other
// scripts, emoji and line breaks in messages pass.
func TestHumanTextAndDatesAreClean(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_t", "rph@t.test")
		pt := e.enroll(rph, "Ann")
		care := e.careClient(rph)
		msg := e.msgClient(pt.token)
		enroll := func(given, dob string) error {
			_, err := care.EnrollPatient(ctx, req(&mtmv1.EnrollPatientRequest{GivenName: given, FamilyName: "Tester", DateOfBirth: dob, TimeZone: "America/Chicago"}))
			return err
		}
		thread := func(subject, body string) error {
			_, err := msg.StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: pt.id, Subject: subject, ClientMessageId: "cm_" + subject + body + "________", Body: body}))
			return err
		}
		fill := func(on string) error {
			_, err := care.RecordFill(ctx, req(&mtmv1.RecordFillRequest{PatientId: pt.id, MedicationId: "md_x", FilledOn: on, DaysSupply: 30}))
			return err
		}
		bad := []struct {
			name  string
			call  func() error
			field string
		}{
			{"NUL in a name", func() error { return enroll("Ann\x00", "1950-01-01") }, "given_name"},
			{"right-to-left override in a name", func() error { return enroll("Ann\u202egnp.exe", "1950-01-01") }, "given_name"},
			{"isolate in a name", func() error { return enroll("Ann\u2066", "1950-01-01") }, "given_name"},
			{"zero-width space in a name", func() error { return enroll("A\u200bnn", "1950-01-01") }, "given_name"},
			{"zero-width joiner in a name", func() error { return enroll("A\u200dnn", "1950-01-01") }, "given_name"},
			{"spaces-only name", func() error { return enroll(" \u00a0\u3000 ", "1950-01-01") }, "given_name"},
			{"line break in a subject", func() error { return thread("a\nb", "hi") }, "subject"},
			{"bell in a message", func() error { return thread("q", "hi\a") }, "body"},
			{"override in a message", func() error { return thread("q", "take \u202e2 tablets") }, "body"},
			{"blank message", func() error { return thread("q", " \n\t ") }, "body"},
			{"year 1", func() error { return enroll("Ann", "0001-01-01") }, "date_of_birth"},
			{"year 9999", func() error { return fill("9999-12-31") }, "filled_on"},
			{"birth date in the future", func() error { return enroll("Ann", "2100-01-01") }, "date_of_birth"},
			{"no such day", func() error { return enroll("Ann", "1950-02-30") }, "date_of_birth"},
		}
		for _, tt := range bad {
			t.Run(tt.name, func(t *testing.T) {
				ce := wantCode(t, tt.call(), connect.CodeInvalidArgument)
				if fields := violatedFields(t, ce); !slices.Contains(fields, tt.field) {
					t.Fatalf("violations name %v, want %s", fields, tt.field)
				}
			})
		}
		for _, good := range []struct{ name, given, subject, body string }{
			{"accents and CJK", "Zoë 陳", "Ibuprofen?", "Can I take it with\nmy tea?"},
			{"Arabic with a direction mark", "مريم", "سؤال", "هل يمكنني\u200f؟"},
			{"emoji sequence in a message", "Ann-Marie O'Neil", "Thanks", "thank you ❤️\u200d🔥\tsee you"},
		} {
			t.Run(good.name, func(t *testing.T) {
				if err := enroll(good.given, "1950-01-01"); err != nil {
					t.Fatalf("enroll %q: %v", good.given, err)
				}
				if err := thread(good.subject, good.body); err != nil {
					t.Fatalf("thread %q %q: %v", good.subject, good.body, err)
				}
			})
		}
	})
}

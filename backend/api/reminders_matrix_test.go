package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// matrixDoseSchedule gives the patient a daily 08:00 schedule of the
// medicine and returns it with its dose on the test day (the env clock
// stands at 09:00 in Chicago).
func matrixDoseSchedule(t *testing.T, e *env, p enrolled, medicationID string) (string, string) {
	t.Helper()
	res, err := e.patientClient(p.token).SetDoseSchedule(context.Background(), req(&mtmv1.SetDoseScheduleRequest{
		PatientId: p.id, MedicationId: medicationID, TimesOfDay: []int32{8 * 60}}))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Msg.GetSchedule().GetId()
	occ := store.Reminder{Kind: store.ReminderDose, RefID: id, Occurrence: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)}
	return id, occ.OccurrenceID()
}

// missingOccurrence is a well-formed dose occurrence of a schedule that
// does not exist.
func missingOccurrence() string {
	return store.Reminder{Kind: store.ReminderDose, RefID: "ds_missing", Occurrence: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)}.OccurrenceID()
}

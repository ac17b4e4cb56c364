package api_test

import (
	"context"
	"strings"
	"testing"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// forEachBackend runs fn on a fresh server over each store, Connect only.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("bolt", func(t *testing.T) { fn(t, newEnv(t)) })
	t.Run("redis", func(t *testing.T) { fn(t, newEnvOn(t, redisStore(t))) })
}

// TestDeletePatient: a pharmacy admin erases a patient after typing the
// family name again; a plain pharmacist cannot, a wrong name deletes
// nothing, and the audit archive keeps the event with ids only.
func TestDeletePatient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		admin := e.pharmacy("ph_del", "admin@del.test")
		gone := e.enroll(admin, "Gonzalo")
		kept := e.enroll(admin, "Keeper")
		care := e.careClient(admin)
		if _, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: gone.id, Medication: &mtmv1.MedicationFields{Name: "Erasedrin", HowIUseIt: "daily"}})); err != nil {
			t.Fatal(err)
		}
		if _, err := care.CreatePharmacist(ctx, req(&mtmv1.CreatePharmacistRequest{Email: "plain@del.test", Password: "a long enough password", DisplayName: "Plain RPh"})); err != nil {
			t.Fatal(err)
		}
		plain := e.careClient(e.login("plain@del.test", "a long enough password"))

		_, err := plain.DeletePatient(ctx, req(&mtmv1.DeletePatientRequest{PatientId: gone.id, ConfirmFamilyName: "Tester"}))
		wantCode(t, err, connect.CodePermissionDenied)

		_, err = care.DeletePatient(ctx, req(&mtmv1.DeletePatientRequest{PatientId: gone.id, ConfirmFamilyName: "Testers"}))
		if ce := wantCode(t, err, connect.CodeInvalidArgument); !strings.Contains(ce.Message(), "confirm_family_name") {
			t.Errorf("wrong confirmation: %q does not name confirm_family_name", ce.Message())
		}
		if _, err := care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: gone.id})); err != nil {
			t.Fatalf("refused deletions deleted the patient: %v", err)
		}

		res, err := care.DeletePatient(ctx, req(&mtmv1.DeletePatientRequest{PatientId: gone.id, ConfirmFamilyName: "  tester "}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Msg.GetErased()) == 0 {
			t.Error("the answer counts nothing erased")
		}
		_, err = care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: gone.id}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = e.patientClient(gone.token).GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: gone.id}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = care.DeletePatient(ctx, req(&mtmv1.DeletePatientRequest{PatientId: gone.id, ConfirmFamilyName: "Tester"}))
		wantCode(t, err, connect.CodeNotFound)
		if _, err := care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: kept.id})); err != nil {
			t.Errorf("the other patient: %v", err)
		}
		found, err := care.SearchPatients(ctx, req(&mtmv1.SearchPatientsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range found.Msg.GetPatients() {
			if p.GetId() == gone.id {
				t.Error("the deleted patient is still listed")
			}
		}

		// The archive has the deletion, by id.
		var deleted bool
		for _, ev := range e.archive.all() {
			if ev.Procedure == mtmv1connect.CareServiceDeletePatientProcedure && ev.PatientID == gone.id && ev.Code == "ok" {
				deleted = true
				if ev.ActorID != "ac_ph_del" {
					t.Errorf("deletion event actor %q", ev.ActorID)
				}
			}
		}
		if !deleted {
			t.Error("no archive event for the deletion")
		}
	})
}

// TestSearchByNameAndBirthDate: with a family name and a birth date the
// search is an exact lookup (any case and spacing of the name); a birth
// date alone keeps the patients born that day.
func TestSearchByNameAndBirthDate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_find", "rph@find.test")
		far := e.pharmacy("ph_far", "rph@far.test")
		care := e.careClient(rph)
		enroll := func(token, given, family, dob string) string {
			res, err := e.careClient(token).EnrollPatient(ctx, req(&mtmv1.EnrollPatientRequest{GivenName: given, FamilyName: family, DateOfBirth: dob, TimeZone: "America/Chicago"}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetPatient().GetId()
		}
		want := enroll(rph, "Ana", "De la Cruz", "1950-06-01")
		enroll(rph, "Ben", "De la Cruz", "1951-06-01")   // another day
		enroll(rph, "Cy", "De la Cruzado", "1950-06-01") // a longer name
		enroll(far, "Di", "De la Cruz", "1950-06-01")    // another pharmacy
		ids := func(r *mtmv1.SearchPatientsRequest) []string {
			t.Helper()
			res, err := care.SearchPatients(ctx, req(r))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, p := range res.Msg.GetPatients() {
				out = append(out, p.GetId())
			}
			return out
		}
		if got := ids(&mtmv1.SearchPatientsRequest{DateOfBirth: "1950-06-01"}); len(got) != 2 {
			t.Errorf("birth date alone found %v, want the two of this pharmacy born that day", got)
		}
		_, err := care.SearchPatients(ctx, req(&mtmv1.SearchPatientsRequest{NamePrefix: "x", DateOfBirth: "1950-02-30"}))
		if ce := wantCode(t, err, connect.CodeInvalidArgument); !strings.Contains(ce.Message(), "date_of_birth") {
			t.Errorf("bad date: %q does not name date_of_birth", ce.Message())
		}
		if got := ids(&mtmv1.SearchPatientsRequest{NamePrefix: "  de LA   cruz ", DateOfBirth: "1950-06-01"}); len(got) != 1 || got[0] != want {
			t.Errorf("name and birth date found %v, want [%s]", got, want)
		}
		if got := ids(&mtmv1.SearchPatientsRequest{NamePrefix: "de la cruz", DateOfBirth: "1950-06-02"}); len(got) != 0 {
			t.Errorf("another day found %v", got)
		}
	})
}

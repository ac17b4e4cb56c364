package api_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestBadInput: each malformed request gets invalid_argument naming the
// field (or resource_exhausted for an oversized body) and changes nothing.
func TestBadInput(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		care := e.careClient(rph)
		patient := e.patientClient(pt.token)
		before, err := e.store.GetPatient(ctx, pt.id)
		if err != nil {
			t.Fatal(err)
		}
		med := func(f *mtmv1.MedicationFields) error {
			_, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pt.id, Medication: f}))
			return err
		}
		tests := []struct {
			name  string
			call  func() error
			field string
		}{
			{"missing medication", func() error { return med(nil) }, "medication"},
			{"empty medicine name", func() error { return med(&mtmv1.MedicationFields{HowIUseIt: "daily"}) }, "medication.name"},
			{"malformed start date", func() error {
				return med(&mtmv1.MedicationFields{Name: "X", HowIUseIt: "daily", StartedOn: "03/01/2026"})
			}, "medication.started_on"},
			{"impossible start date", func() error {
				return med(&mtmv1.MedicationFields{Name: "X", HowIUseIt: "daily", StartedOn: "2025-02-30"})
			}, "medication.started_on"},
			{"future start date", func() error {
				return med(&mtmv1.MedicationFields{Name: "X", HowIUseIt: "daily", StartedOn: "2030-01-01"})
			}, "medication.started_on"},
			{"non-numeric RxCUI", func() error { return med(&mtmv1.MedicationFields{Name: "X", HowIUseIt: "daily", Rxcui: "abc"}) }, "medication.rxcui"},
			{"patient id with bad characters", func() error {
				_, err := care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: "../etc"}))
				return err
			}, "patient_id"},
			{"zero days' supply", func() error {
				_, err := care.RecordFill(ctx, connect.NewRequest(&mtmv1.RecordFillRequest{PatientId: pt.id, MedicationId: "md_x", FilledOn: "2026-03-01"}))
				return err
			}, "days_supply"},
			{"unknown time zone at enrollment", func() error {
				_, err := care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: "A", FamilyName: "B", DateOfBirth: "1950-01-01", TimeZone: "Mars/Olympus"}))
				return err
			}, "time_zone"},
			{"quiet hours past midnight", func() error {
				_, err := patient.UpdatePreferences(ctx, connect.NewRequest(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, QuietHours: &mtmv1.QuietHours{StartMinute: 1440}}))
				return err
			}, "quiet_hours.start_minute"},
			{"allergy kind unspecified", func() error {
				_, err := care.AddAllergy(ctx, connect.NewRequest(&mtmv1.AddAllergyRequest{PatientId: pt.id, Substance: "Latex"}))
				return err
			}, "kind"},
			{"stale-version zero", func() error {
				_, err := care.StopMedication(ctx, connect.NewRequest(&mtmv1.StopMedicationRequest{PatientId: pt.id, MedicationId: "md_x", StoppedOn: "2026-03-01", WhyStopped: "x"}))
				return err
			}, "expected_version"},
			{"empty progress", func() error {
				_, err := patient.RecordActionProgress(ctx, connect.NewRequest(&mtmv1.RecordActionProgressRequest{PatientId: pt.id, ActionItemId: "ai_x", DoneOn: "2026-03-01"}))
				return err
			}, "what_i_did"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ce := wantCode(t, tt.call(), connect.CodeInvalidArgument)
				if fields := violatedFields(t, ce); !slices.Contains(fields, tt.field) {
					t.Fatalf("violations name %v, want %s", fields, tt.field)
				}
			})
		}
		t.Run("oversized body", func(t *testing.T) {
			err := med(&mtmv1.MedicationFields{Name: "X", HowIUseIt: strings.Repeat("a", maxBody+1)})
			wantCode(t, err, connect.CodeResourceExhausted)
		})
		t.Run("unknown medication for a fill", func(t *testing.T) {
			_, err := care.RecordFill(ctx, connect.NewRequest(&mtmv1.RecordFillRequest{PatientId: pt.id, MedicationId: "md_nope", FilledOn: "2026-03-01", DaysSupply: 30}))
			wantCode(t, err, connect.CodeNotFound)
		})
		after, err := e.store.GetPatient(ctx, pt.id)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version != before.Version {
			t.Fatalf("bad input changed the record: version %d -> %d", before.Version, after.Version)
		}
	})
}

package api

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestMedicationListToProtoKeepsEveryField: the PML answer carries every
// field of every row, current medicines first, then stopped ones in the
// order they were added.
func TestMedicationListToProtoKeepsEveryField(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 123, time.UTC)
	p := store.Patient{ID: "pt_1", OtherInformation: "uses a pill box", UpdatedAt: at,
		Medications: []store.Medication{
			{ID: "md_stopped", Name: "warfarin", StartedOn: store.Date{Year: 2024, Month: 1, Day: 2}, StoppedOn: store.Date{Year: 2025, Month: 3, Day: 4},
				WhyStopped: "bleeding", UpdatedAt: at, Version: 3},
			{ID: "md_1", Name: "metformin", Strength: "500 mg", RxCUI: "860975", HowIUseIt: "1 tablet twice a day", WhyIUseIt: "diabetes",
				Prescriber: "Dr. Ruiz", PrescriberPhone: "555-0100", StartedOn: store.Date{Year: 2025, Month: 6, Day: 7}, UpdatedAt: at, Version: 2},
		},
		Allergies: []store.Allergy{{ID: "al_1", Kind: store.KindSideEffect, Substance: "codeine", Reaction: "nausea", RecordedAt: at}},
		Fills:     []store.Fill{{ID: "fl_1", MedicationID: "md_1", FilledOn: store.Date{Year: 2026, Month: 11, Day: 1}, DaysSupply: 30}},
	}
	ts := timestamppb.New(at)
	want := &mtmv1.PersonalMedicationList{PatientId: "pt_1", OtherInformation: "uses a pill box", UpdatedAt: ts,
		Medications: []*mtmv1.Medication{
			{Id: "md_1", Name: "metformin", Strength: "500 mg", Rxcui: "860975", HowIUseIt: "1 tablet twice a day", WhyIUseIt: "diabetes",
				Prescriber: "Dr. Ruiz", PrescriberPhone: "555-0100", StartedOn: "2025-06-07", UpdatedAt: ts, Version: 2},
			{Id: "md_stopped", Name: "warfarin", StartedOn: "2024-01-02", StoppedOn: "2025-03-04", WhyStopped: "bleeding", UpdatedAt: ts, Version: 3},
		},
		Allergies: []*mtmv1.Allergy{{Id: "al_1", Kind: mtmv1.AllergyKind_ALLERGY_KIND_SIDE_EFFECT, Substance: "codeine", Reaction: "nausea", RecordedAt: ts}},
		Fills:     []*mtmv1.Fill{{Id: "fl_1", MedicationId: "md_1", FilledOn: "2026-11-01", DaysSupply: 30}},
	}
	if got := medicationListToProto(p); !proto.Equal(got, want) {
		t.Errorf("medicationListToProto:\n got %v\nwant %v", got, want)
	}
	if got := medicationToProto(p.Medications[1]); !proto.Equal(got, want.Medications[0]) {
		t.Errorf("medicationToProto:\n got %v\nwant %v", got, want.Medications[0])
	}
}

// BenchmarkMedicationListToProto converts a 20-medicine PML.
func BenchmarkMedicationListToProto(b *testing.B) {
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	p := store.Patient{ID: "pt_1", UpdatedAt: at,
		Allergies: []store.Allergy{{ID: "al_1", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives", RecordedAt: at}}}
	for i := range 20 {
		p.Medications = append(p.Medications, store.Medication{ID: fmt.Sprint("md_", i), Name: "metformin", Strength: "500 mg",
			HowIUseIt: "1 tablet twice a day", StartedOn: store.Date{Year: 2025, Month: 1, Day: 2}, UpdatedAt: at, Version: 1})
		p.Fills = append(p.Fills, store.Fill{ID: fmt.Sprint("fl_", i), MedicationID: fmt.Sprint("md_", i), FilledOn: store.Date{Year: 2026, Month: 11, Day: 1}, DaysSupply: 30, RecordedAt: at})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = medicationListToProto(p)
	}
}

package fhir_test

import (
	"testing"

	"github.com/mtmapp/mtm/backend/export/fhir"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// BenchmarkBundle exports the conformance suite's sample patient with 20
// medicines.
func BenchmarkBundle(b *testing.B) {
	in := fhir.Input{Patient: storetest.SamplePatient("pt_bench", "ph_bench", 20), PharmacyName: "Bench", Now: now}
	for b.Loop() {
		if _, err := fhir.Bundle(in); err != nil {
			b.Fatal(err)
		}
	}
}

package cmspdf_test

import (
	"testing"

	"github.com/mtmapp/mtm/backend/export/cmspdf"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// BenchmarkRender renders the conformance suite's sample patient with 20
// medicines.
func BenchmarkRender(b *testing.B) {
	in := cmspdf.Input{Patient: storetest.SamplePatient("pt_bench", "ph_bench", 20), Pharmacy: store.Pharmacy{Name: "Bench"}, Prepared: date("2026-03-15")}
	for b.Loop() {
		if _, err := cmspdf.Render(in); err != nil {
			b.Fatal(err)
		}
	}
}

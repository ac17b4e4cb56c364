// Package clinical holds the MTM domain arithmetic that does not depend on
// storage or transport: how long a medicine's supply lasts, when a refill is
// due, adherence as Proportion of Days Covered, and when the next
// Comprehensive Medication Review is due.
package clinical

import (
	"slices"

	"github.com/mtmapp/mtm/backend/store"
)

// SupplyRunsThrough returns the last day covered by fills of one medicine.
// A fill covers FilledOn through FilledOn + DaysSupply − 1; a fill made
// while earlier supply remains starts the day after that supply runs out
// (the PQA carry-forward convention), so an early refill never loses days.
// ok is false when there are no fills.
func SupplyRunsThrough(fills []store.Fill) (through store.Date, ok bool) {
	if len(fills) == 0 {
		return store.Date{}, false
	}
	sorted := slices.Clone(fills)
	slices.SortStableFunc(sorted, func(a, b store.Fill) int {
		return a.FilledOn.Time().Compare(b.FilledOn.Time())
	})
	for i, f := range sorted {
		start := f.FilledOn
		if i > 0 && !through.Before(start) {
			start = through.AddDays(1)
		}
		through = start.AddDays(f.DaysSupply - 1)
	}
	return through, true
}

// FillsOf returns the fills of one medicine, in recorded order.
func FillsOf(fills []store.Fill, medicationID string) []store.Fill {
	var out []store.Fill
	for _, f := range fills {
		if f.MedicationID == medicationID {
			out = append(out, f)
		}
	}
	return out
}

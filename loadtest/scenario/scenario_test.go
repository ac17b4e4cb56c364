package scenario_test

import (
	"slices"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// The dose confirmations the load test sends name the same occurrence the
// reminder push carries: 8:00 local on the day, in the patient's zone.
func TestDoseOccurrenceIDMatchesTheReminder(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Pacific/Honolulu", "UTC"} {
		t.Run(zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			day := time.Date(2026, 3, 8, 15, 0, 0, 0, time.UTC) // the US DST change
			id := scenario.DoseOccurrenceID("ds_x", day, loc)
			y, m, d := day.In(loc).Date()
			want := store.Reminder{Kind: store.ReminderDose, RefID: "ds_x", Occurrence: time.Date(y, m, d, 8, 0, 0, 0, loc)}
			if id != want.OccurrenceID() {
				t.Errorf("got %q, want %q", id, want.OccurrenceID())
			}
			kind, ref, occ, err := store.ParseOccurrenceID(id)
			if err != nil || kind != store.ReminderDose || ref != "ds_x" || occ.In(loc).Hour() != 8 {
				t.Errorf("ParseOccurrenceID(%q) = %v %v %v %v", id, kind, ref, occ, err)
			}
		})
	}
}

// Spread picks the active patients of a phase: as many as asked, distinct,
// from the whole population rather than its first part.
func TestSpread(t *testing.T) {
	set := make([]int, 100)
	for i := range set {
		set[i] = 1000 + i
	}
	if got := scenario.Spread(set, 4); !slices.Equal(got, []int{1000, 1025, 1050, 1075}) {
		t.Errorf("Spread(100, 4) = %v", got)
	}
	for _, n := range []int{0, 100, 250} {
		if got := scenario.Spread(set, n); !slices.Equal(got, set) {
			t.Errorf("Spread(100, %d) = %d members, want all of the set", n, len(got))
		}
	}
	got := scenario.Spread(set, 99)
	seen := map[int]bool{}
	for _, v := range got {
		seen[v] = true
	}
	if len(got) != 99 || len(seen) != 99 {
		t.Errorf("Spread(100, 99): %d members, %d distinct", len(got), len(seen))
	}
}

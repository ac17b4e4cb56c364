package clinical

import (
	"math"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

func fill(on string, days int) store.Fill { return store.Fill{FilledOn: d(on), DaysSupply: days} }

// The worked examples use the first quarter of 2026: 1 January through
// 31 March is 90 days (31 + 28 + 31).
func TestProportionOfDaysCovered(t *testing.T) {
	const from, through = "2026-01-01", "2026-03-31"
	tests := []struct {
		name        string
		from, thru  string
		fills       []store.Fill
		wantFrom    string
		wantCovered int
		wantDays    int
		wantBelow   bool
	}{
		{name: "refills on time cover every day",
			fills:    []store.Fill{fill("2026-01-01", 30), fill("2026-01-31", 30), fill("2026-03-02", 30)},
			wantFrom: from, wantCovered: 90, wantDays: 90},
		{name: "a 15-day gap: 60 of 90 days",
			// Jan 1–30 and Feb 15–Mar 16; Jan 31–Feb 14 and Mar 17–31 uncovered.
			fills:    []store.Fill{fill("2026-01-01", 30), fill("2026-02-15", 30)},
			wantFrom: from, wantCovered: 60, wantDays: 90, wantBelow: true},
		{name: "early refills carry forward instead of overlapping",
			// Jan 1–30; the Jan 20 fill starts Jan 31 (to Mar 1); the Feb 15
			// fill starts Mar 2 (to Mar 31). Counting overlaps once without
			// the shift would give only Jan 1–Mar 16 = 75 days.
			fills:    []store.Fill{fill("2026-01-01", 30), fill("2026-01-20", 30), fill("2026-02-15", 30)},
			wantFrom: from, wantCovered: 90, wantDays: 90},
		{name: "fills recorded out of order give the same answer",
			fills:    []store.Fill{fill("2026-02-15", 30), fill("2026-01-01", 30), fill("2026-01-20", 30)},
			wantFrom: from, wantCovered: 90, wantDays: 90},
		{name: "supply from before the window counts from the window's first day",
			// Dec 20–Jan 18 gives 18 days inside; Jan 19–Feb 17 another 30.
			fills:    []store.Fill{fill("2025-12-20", 30), fill("2026-01-19", 30)},
			wantFrom: from, wantCovered: 48, wantDays: 90, wantBelow: true},
		{name: "carry-forward from before the window reaches into it",
			// Dec 1–30, then the Dec 20 fill shifts to Dec 31–Jan 29: 29 days inside.
			fills:    []store.Fill{fill("2025-12-01", 30), fill("2025-12-20", 30)},
			wantFrom: from, wantCovered: 29, wantDays: 90, wantBelow: true},
		{name: "supply running past the window's last day is cut off",
			fills:    []store.Fill{fill("2026-01-01", 120)},
			wantFrom: from, wantCovered: 90, wantDays: 90},
		{name: "a first fill inside the window starts the period",
			// Treatment started Mar 20: 12 days measured, all covered.
			fills:    []store.Fill{fill("2026-03-20", 30)},
			wantFrom: "2026-03-20", wantCovered: 12, wantDays: 12},
		{name: "a fill on the window's last day counts that one day",
			fills:    []store.Fill{fill("2026-03-31", 30)},
			wantFrom: "2026-03-31", wantCovered: 1, wantDays: 1},
		{name: "a fill on the day after the window is not counted",
			fills:    []store.Fill{fill("2026-01-01", 30), fill("2026-04-01", 30)},
			wantFrom: from, wantCovered: 30, wantDays: 90, wantBelow: true},
		{name: "supply that ran out before the window: 0 days covered",
			fills:    []store.Fill{fill("2025-10-01", 30)},
			wantFrom: from, wantCovered: 0, wantDays: 90, wantBelow: true},
		{name: "the same fill entered twice on one day counts once",
			fills:    []store.Fill{fill("2026-01-01", 30), fill("2026-01-01", 30)},
			wantFrom: from, wantCovered: 30, wantDays: 90, wantBelow: true},
		{name: "same-day fills keep the longest supply",
			fills:    []store.Fill{fill("2026-01-01", 30), fill("2026-01-01", 90)},
			wantFrom: from, wantCovered: 90, wantDays: 90},
		{name: "fills without supply are ignored",
			fills:    []store.Fill{fill("2026-01-01", 0), fill("2026-01-01", 45)},
			wantFrom: from, wantCovered: 45, wantDays: 90, wantBelow: true},
		{name: "exactly 80% is at the threshold, not below",
			from: "2026-01-01", thru: "2026-01-10",
			fills:    []store.Fill{fill("2026-01-01", 8)},
			wantFrom: "2026-01-01", wantCovered: 8, wantDays: 10},
		{name: "72 of 90 days is exactly 80%",
			fills:    []store.Fill{fill("2026-01-01", 72)},
			wantFrom: from, wantCovered: 72, wantDays: 90},
		{name: "71 of 90 days is below 80%",
			fills:    []store.Fill{fill("2026-01-01", 71)},
			wantFrom: from, wantCovered: 71, wantDays: 90, wantBelow: true},
		{name: "a window across a leap day has 29 February",
			from: "2028-02-01", thru: "2028-03-01",
			fills:    []store.Fill{fill("2028-02-01", 30)},
			wantFrom: "2028-02-01", wantCovered: 30, wantDays: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, th := from, through
			if tt.from != "" {
				f, th = tt.from, tt.thru
			}
			got, ok := ProportionOfDaysCovered(tt.fills, d(f), d(th))
			if !ok {
				t.Fatal("ok = false, want a measurement")
			}
			if got.From.String() != tt.wantFrom || got.Through.String() != th {
				t.Errorf("period %s..%s, want %s..%s", got.From, got.Through, tt.wantFrom, th)
			}
			if got.DaysCovered != tt.wantCovered || got.DaysInPeriod != tt.wantDays {
				t.Errorf("covered %d of %d days, want %d of %d", got.DaysCovered, got.DaysInPeriod, tt.wantCovered, tt.wantDays)
			}
			if want := float64(tt.wantCovered) / float64(tt.wantDays); math.Abs(got.PDC()-want) > 1e-12 {
				t.Errorf("PDC = %v, want %v", got.PDC(), want)
			}
			if got.BelowThreshold() != tt.wantBelow {
				t.Errorf("BelowThreshold = %v at PDC %.4f, want %v", got.BelowThreshold(), got.PDC(), tt.wantBelow)
			}
		})
	}
}

func TestProportionOfDaysCoveredNothingToMeasure(t *testing.T) {
	tests := []struct {
		name          string
		fills         []store.Fill
		from, through string
	}{
		{"no fills", nil, "2026-01-01", "2026-03-31"},
		{"first fill after the window", []store.Fill{fill("2026-04-01", 30)}, "2026-01-01", "2026-03-31"},
		{"window ends before it starts", []store.Fill{fill("2026-01-01", 30)}, "2026-03-31", "2026-01-01"},
		{"only fills without supply", []store.Fill{fill("2026-01-01", 0)}, "2026-01-01", "2026-03-31"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, ok := ProportionOfDaysCovered(tt.fills, d(tt.from), d(tt.through)); ok {
				t.Fatalf("got %+v, want ok = false", a)
			}
		})
	}
}

func TestNextCMRDue(t *testing.T) {
	enrolled := d("2025-06-15")
	tests := []struct {
		name    string
		reviews []store.Review
		want    string
	}{
		{"never reviewed: due at enrollment", nil, "2025-06-15"},
		{"only targeted reviews: still due at enrollment",
			[]store.Review{{Kind: ReviewTMR, ReviewedOn: d("2025-09-01")}}, "2025-06-15"},
		{"one year after the last CMR",
			[]store.Review{{Kind: ReviewCMR, ReviewedOn: d("2025-07-01")}}, "2026-07-01"},
		{"the latest CMR wins, whatever the order",
			[]store.Review{{Kind: ReviewCMR, ReviewedOn: d("2026-02-10")}, {Kind: ReviewCMR, ReviewedOn: d("2025-07-01")}, {Kind: ReviewTMR, ReviewedOn: d("2026-05-01")}}, "2027-02-10"},
		{"a CMR on 29 February is due on 28 February",
			[]store.Review{{Kind: ReviewCMR, ReviewedOn: d("2028-02-29")}}, "2029-02-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextCMRDue(tt.reviews, enrolled); got.String() != tt.want {
				t.Fatalf("NextCMRDue = %s, want %s", got, tt.want)
			}
		})
	}
}

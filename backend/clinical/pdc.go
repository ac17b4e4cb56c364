package clinical

import (
	"slices"

	"github.com/mtmapp/mtm/backend/store"
)

// PDCThreshold is the usual adherence threshold: a Proportion of Days
// Covered below it counts as non-adherent (PQA measures use 80%).
const PDCThreshold = 0.80

// Adherence is the Proportion of Days Covered of one medicine over a
// period.
type Adherence struct {
	// From and Through bound the days that were counted, both included:
	// the window, narrowed to start at the first fill inside it.
	From, Through store.Date
	// DaysInPeriod is the denominator, DaysCovered the numerator.
	DaysInPeriod int
	DaysCovered  int
}

// PDC is DaysCovered / DaysInPeriod, 0 when the period is empty.
func (a Adherence) PDC() float64 {
	if a.DaysInPeriod <= 0 {
		return 0
	}
	return float64(a.DaysCovered) / float64(a.DaysInPeriod)
}

// BelowThreshold reports whether the PDC is under PDCThreshold.
func (a Adherence) BelowThreshold() bool { return a.PDC() < PDCThreshold }

// ProportionOfDaysCovered computes the PDC of one medicine's fills over the
// window from..through (both included), following the PQA convention:
//
//   - each fill covers FilledOn through FilledOn + DaysSupply − 1;
//   - a fill made while earlier supply remains starts the day after that
//     supply runs out (early refills shift forward), so every day is
//     counted at most once;
//   - supply from fills before the window that reaches into it counts;
//     days past the window do not;
//   - fills of the same medicine on the same day count once, with the
//     longest days' supply (a duplicate entry is not extra supply);
//   - the period starts at the window's start, or at the first fill inside
//     the window when the medicine had never been filled before it (the
//     patient's treatment started then).
//
// ok is false when there is nothing to measure: the medicine was never
// filled on or before through, or through is before from. Fills with no
// supply are ignored.
func ProportionOfDaysCovered(fills []store.Fill, from, through store.Date) (a Adherence, ok bool) {
	if through.Before(from) {
		return Adherence{}, false
	}
	sorted := make([]store.Fill, 0, len(fills))
	for _, f := range fills {
		if f.DaysSupply > 0 && !through.Before(f.FilledOn) {
			sorted = append(sorted, f)
		}
	}
	slices.SortStableFunc(sorted, func(x, y store.Fill) int {
		if c := x.FilledOn.Time().Compare(y.FilledOn.Time()); c != 0 {
			return c
		}
		return y.DaysSupply - x.DaysSupply // longest first on the same day
	})
	sorted = slices.CompactFunc(sorted, func(x, y store.Fill) bool { return x.FilledOn == y.FilledOn })

	var (
		next    store.Date // first day not yet covered by earlier fills
		covered int
		start   store.Date // first day of the period; zero until known
	)
	for i, f := range sorted {
		first := f.FilledOn
		if i > 0 && first.Before(next) {
			first = next
		}
		last := first.AddDays(f.DaysSupply - 1)
		next = last.AddDays(1)
		if last.Before(from) {
			continue // used up before the window
		}
		if start.IsZero() {
			start = from
			if from.Before(first) {
				start = first
			}
		}
		covered += overlapDays(first, last, start, through)
	}
	if start.IsZero() {
		if len(sorted) == 0 {
			return Adherence{}, false
		}
		start = from // every earlier supply ran out before the window
	}
	return Adherence{From: start, Through: through, DaysInPeriod: daysBetween(start, through) + 1, DaysCovered: covered}, true
}

// overlapDays counts the days of a..b (inclusive) that lie in lo..hi.
func overlapDays(a, b, lo, hi store.Date) int {
	if a.Before(lo) {
		a = lo
	}
	if hi.Before(b) {
		b = hi
	}
	if b.Before(a) {
		return 0
	}
	return daysBetween(a, b) + 1
}

// daysBetween is the number of days from a to b (negative when b is before a).
func daysBetween(a, b store.Date) int {
	return int(b.Time().Sub(a.Time()).Hours() / 24)
}

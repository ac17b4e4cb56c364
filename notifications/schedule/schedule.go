// Package schedule is the pure arithmetic of reminders: when the doses of a
// schedule fall in the patient's IANA time zone (correct across daylight
// saving changes), when a refill reminder is due, and how quiet hours defer
// non-urgent reminders. Nothing here reads a clock or a store.
//
// Wall-clock rules across DST:
//   - a local time that does not exist (spring forward, e.g. 02:30 on the
//     night clocks go from 02:00 to 03:00) fires at the moment the gap
//     ends (03:00 new time), once;
//   - a local time that happens twice (fall back, e.g. 01:30 when clocks
//     go from 02:00 back to 01:00) fires once, at its first occurrence.
package schedule

import (
	"slices"
	"sync"
	"time"

	_ "time/tzdata" // zones without system files

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
)

// At returns the instant at which the wall clock in loc first reads minute
// (minutes after midnight) on date d, following the package's DST rules.
func At(d store.Date, minute int, loc *time.Location) time.Time {
	h, m := minute/60, minute%60
	naive := time.Date(d.Year, d.Month, d.Day, h, m, 0, 0, time.UTC)
	// The candidate instants are naive minus each offset in force around
	// that day; a valid one shows the requested wall clock in loc.
	var best time.Time
	for _, probe := range []time.Duration{-36 * time.Hour, 36 * time.Hour} {
		_, off := naive.Add(probe).In(loc).Zone()
		c := naive.Add(-time.Duration(off) * time.Second)
		l := c.In(loc)
		if l.Hour() == h && l.Minute() == m && l.Day() == d.Day {
			if best.IsZero() || c.Before(best) {
				best = c
			}
		}
	}
	if !best.IsZero() {
		return best
	}
	// In a gap: fire when the new zone period starts.
	_, off := naive.Add(-36 * time.Hour).In(loc).Zone()
	c := naive.Add(-time.Duration(off) * time.Second).In(loc)
	start, _ := c.ZoneBounds()
	if start.IsZero() {
		return c
	}
	return start
}

// Location loads the patient's zone; an empty or unknown name means UTC.
func Location(name string) *time.Location {
	if loc, err := time.LoadLocation(name); err == nil && name != "" {
		return loc
	}
	return time.UTC
}

// NextDose returns the first dose of s strictly after after, or false when
// the schedule has no dose left (past EndOn, or no times).
func NextDose(s store.DoseSchedule, loc *time.Location, after time.Time) (time.Time, bool) {
	if len(s.TimesOfDay) == 0 {
		return time.Time{}, false
	}
	times := slices.Sorted(slices.Values(s.TimesOfDay))
	day := store.DateOf(after.In(loc)).AddDays(-1)
	if !s.StartOn.IsZero() && day.Before(s.StartOn) {
		day = s.StartOn
	}
	for range 9 {
		if !s.EndOn.IsZero() && s.EndOn.Before(day) {
			return time.Time{}, false
		}
		if len(s.DaysOfWeek) == 0 || slices.Contains(s.DaysOfWeek, day.Time().Weekday()) {
			for _, m := range times {
				if t := At(day, m, loc); t.After(after) {
					return t, true
				}
			}
		}
		day = day.AddDays(1)
	}
	return time.Time{}, false
}

// Doses lists up to n doses of s strictly after after, in order.
func Doses(s store.DoseSchedule, loc *time.Location, after time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t, ok := NextDose(s, loc, after)
		if !ok {
			break
		}
		out = append(out, t)
		after = t
	}
	return out
}

// Refill describes when the refill reminder of one medicine fires.
type Refill struct {
	RunsThrough store.Date // last day the supply covers
	RemindAt    time.Time  // when to remind
}

// RefillDue computes the refill reminder of a medicine from its fills
// (clinical.SupplyRunsThrough: early refills carry the remaining supply
// forward): it fires on the day lead before the supply runs out (the day
// after RunsThrough; whole days of lead are calendar days, so a DST change
// does not move the day), at minuteOfDay local time. ok is false without
// fills.
func RefillDue(fills []store.Fill, lead time.Duration, minuteOfDay int, loc *time.Location) (Refill, bool) {
	through, ok := clinical.SupplyRunsThrough(fills)
	if !ok {
		return Refill{}, false
	}
	runOut := through.AddDays(1)
	day := runOut.AddDays(-int(lead / (24 * time.Hour))) // whole days count on the calendar, not in hours
	if rest := lead % (24 * time.Hour); rest != 0 {
		day = store.DateOf(At(day, 0, loc).Add(-rest).In(loc))
	}
	return Refill{RunsThrough: through, RemindAt: At(day, minuteOfDay, loc)}, true
}

// InQuietHours reports whether t falls inside the quiet window in loc.
func InQuietHours(t time.Time, q store.QuietHours, loc *time.Location) bool {
	if q.StartMinute == q.EndMinute {
		return false
	}
	l := t.In(loc)
	m := l.Hour()*60 + l.Minute()
	if q.StartMinute < q.EndMinute {
		return m >= q.StartMinute && m < q.EndMinute
	}
	return m >= q.StartMinute || m < q.EndMinute
}

// DeferQuiet returns t, or the end of the quiet window when t falls in it
// (the next local EndMinute after t).
func DeferQuiet(t time.Time, q store.QuietHours, loc *time.Location) time.Time {
	if !InQuietHours(t, q, loc) {
		return t
	}
	day := store.DateOf(t.In(loc))
	for range 3 {
		if end := At(day, q.EndMinute, loc); end.After(t) {
			return end
		}
		day = day.AddDays(1)
	}
	return t
}

// Zones caches loaded time zones: time.LoadLocation parses the zone data
// on every call, which a dispatcher sending thousands of reminders a
// second should not repeat. The zero value is ready; it is safe for
// concurrent use.
type Zones struct {
	mu sync.RWMutex
	m  map[string]*time.Location
}

// Get is Location with a cache.
func (z *Zones) Get(name string) *time.Location {
	z.mu.RLock()
	loc, ok := z.m[name]
	z.mu.RUnlock()
	if ok {
		return loc
	}
	loc = Location(name)
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.m == nil {
		z.m = map[string]*time.Location{}
	}
	if len(z.m) < 1000 { // IANA has about 600 names; bound it anyway
		z.m[name] = loc
	}
	return loc
}

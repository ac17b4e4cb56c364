package schedule_test

import (
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/schedule"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func date(s string) store.Date {
	d, err := store.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestAtAcrossDST(t *testing.T) {
	tests := []struct {
		name, zone, day string
		minute          int
		want            string
	}{
		{"NY ordinary morning", "America/New_York", "2026-03-07", 8 * 60, "2026-03-07T13:00:00Z"},
		{"NY spring forward: 08:00 is EDT", "America/New_York", "2026-03-08", 8 * 60, "2026-03-08T12:00:00Z"},
		{"NY spring forward: 02:30 does not exist, fires at 03:00 EDT", "America/New_York", "2026-03-08", 2*60 + 30, "2026-03-08T07:00:00Z"},
		{"NY fall back: 01:30 happens twice, fires at the first (EDT)", "America/New_York", "2026-11-01", 60 + 30, "2026-11-01T05:30:00Z"},
		{"NY fall back: 08:00 is EST", "America/New_York", "2026-11-01", 8 * 60, "2026-11-01T13:00:00Z"},
		{"Berlin spring forward: 02:30 does not exist, fires at 03:00 CEST", "Europe/Berlin", "2026-03-29", 2*60 + 30, "2026-03-29T01:00:00Z"},
		{"Berlin spring forward: 08:00 is CEST", "Europe/Berlin", "2026-03-29", 8 * 60, "2026-03-29T06:00:00Z"},
		{"Berlin fall back: 02:30 happens twice, fires at the first (CEST)", "Europe/Berlin", "2026-10-25", 2*60 + 30, "2026-10-25T00:30:00Z"},
		{"Berlin fall back: 08:00 is CET", "Europe/Berlin", "2026-10-25", 8 * 60, "2026-10-25T07:00:00Z"},
		{"Sydney fall back (April): 02:30 twice, first is AEDT", "Australia/Sydney", "2026-04-05", 2*60 + 30, "2026-04-04T15:30:00Z"},
		{"Sydney spring forward (October): 02:30 fires at 03:00 AEDT", "Australia/Sydney", "2026-10-04", 2*60 + 30, "2026-10-03T16:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := schedule.Location(tc.zone)
			if got := schedule.At(date(tc.day), tc.minute, loc); !got.Equal(utc(tc.want)) {
				t.Fatalf("At(%s, %02d:%02d) = %s (%s), want %s", tc.day, tc.minute/60, tc.minute%60, got.UTC().Format(time.RFC3339), got.In(loc), tc.want)
			}
		})
	}
}

// TestDailyDosesAcrossDST walks a daily schedule over each transition: the
// patient gets exactly one reminder per dose time per day, at the local
// time they chose.
func TestDailyDosesAcrossDST(t *testing.T) {
	tests := []struct {
		name, zone, from string
		minutes          []int
		want             []string // local wall clock of each dose, in loc
	}{
		{"NY spring forward, 08:00 and 02:30", "America/New_York", "2026-03-07T00:00:00Z", []int{150, 480},
			[]string{"03-06 19:30 wait", "03-07 02:30", "03-07 08:00", "03-08 03:00", "03-08 08:00", "03-09 02:30", "03-09 08:00"}},
		{"NY fall back, 01:30 and 08:00", "America/New_York", "2026-10-31T00:00:00Z", []int{90, 480},
			[]string{"10-30 20:00 wait", "10-31 01:30", "10-31 08:00", "11-01 01:30", "11-01 08:00", "11-02 01:30", "11-02 08:00"}},
		{"Berlin spring forward, 02:30 and 08:00", "Europe/Berlin", "2026-03-28T00:00:00Z", []int{150, 480},
			[]string{"x", "03-28 02:30", "03-28 08:00", "03-29 03:00", "03-29 08:00", "03-30 02:30", "03-30 08:00"}},
		{"Berlin fall back, 02:30 and 08:00", "Europe/Berlin", "2026-10-24T00:00:00Z", []int{150, 480},
			[]string{"x", "10-24 02:30", "10-24 08:00", "10-25 02:30", "10-25 08:00", "10-26 02:30", "10-26 08:00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := schedule.Location(tc.zone)
			s := store.DoseSchedule{ID: "ds-1", MedicationID: "md-1", TimesOfDay: tc.minutes}
			got := schedule.Doses(s, loc, utc(tc.from), 6)
			want := tc.want[1:]
			if len(got) != len(want) {
				t.Fatalf("got %d doses, want %d", len(got), len(want))
			}
			for i, g := range got {
				if l := g.In(loc).Format("01-02 15:04"); l != want[i] {
					t.Errorf("dose %d at %s local (%s), want %s", i, l, g.UTC().Format(time.RFC3339), want[i])
				}
				if i > 0 && !g.After(got[i-1]) {
					t.Errorf("dose %d not after dose %d", i, i-1)
				}
			}
		})
	}
}

func TestNextDoseHonoursDaysAndDates(t *testing.T) {
	loc := schedule.Location("America/Chicago")
	s := store.DoseSchedule{TimesOfDay: []int{9 * 60}, DaysOfWeek: []time.Weekday{time.Monday, time.Thursday},
		StartOn: date("2026-03-05"), EndOn: date("2026-03-16")}
	got := schedule.Doses(s, loc, utc("2026-03-01T00:00:00Z"), 10)
	var days []string
	for _, g := range got {
		days = append(days, g.In(loc).Format("Mon 01-02 15:04"))
	}
	want := []string{"Thu 03-05 09:00", "Mon 03-09 09:00", "Thu 03-12 09:00", "Mon 03-16 09:00"}
	if len(days) != len(want) {
		t.Fatalf("doses %v, want %v", days, want)
	}
	for i := range want {
		if days[i] != want[i] {
			t.Fatalf("doses %v, want %v", days, want)
		}
	}
}

func TestRefillDue(t *testing.T) {
	fill := func(on string, days int) store.Fill {
		return store.Fill{MedicationID: "md-1", FilledOn: date(on), DaysSupply: days}
	}
	const tenAM = 10 * 60
	week := 7 * 24 * time.Hour
	tests := []struct {
		name     string
		fills    []store.Fill
		lead     time.Duration
		through  string
		remindAt string // local
	}{
		{"one 30-day fill", []store.Fill{fill("2026-03-01", 30)}, week, "2026-03-30", "2026-03-24 10:00"},
		{"early refill carries the remaining supply forward", []store.Fill{fill("2026-03-01", 30), fill("2026-03-25", 30)}, week, "2026-04-29", "2026-04-23 10:00"},
		{"early refill recorded out of order", []store.Fill{fill("2026-03-25", 30), fill("2026-03-01", 30)}, week, "2026-04-29", "2026-04-23 10:00"},
		{"late refill starts on its own date", []store.Fill{fill("2026-03-01", 30), fill("2026-04-05", 30)}, week, "2026-05-04", "2026-04-28 10:00"},
		{"lead of three days", []store.Fill{fill("2026-03-01", 30)}, 3 * 24 * time.Hour, "2026-03-30", "2026-03-28 10:00"},
		{"zero lead: the run-out day", []store.Fill{fill("2026-03-01", 30)}, 0, "2026-03-30", "2026-03-31 10:00"},
		{"lead across the spring-forward night", []store.Fill{fill("2026-03-01", 14)}, week, "2026-03-14", "2026-03-08 10:00"},
	}
	loc := schedule.Location("America/New_York")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := schedule.RefillDue(tc.fills, tc.lead, tenAM, loc)
			if !ok {
				t.Fatal("no refill computed")
			}
			if r.RunsThrough.String() != tc.through {
				t.Errorf("supply runs through %s, want %s", r.RunsThrough, tc.through)
			}
			if got := r.RemindAt.In(loc).Format("2006-01-02 15:04"); got != tc.remindAt {
				t.Errorf("remind at %s local, want %s", got, tc.remindAt)
			}
		})
	}
	if _, ok := schedule.RefillDue(nil, week, tenAM, loc); ok {
		t.Error("refill computed without fills")
	}
}

func TestQuietHoursDeferral(t *testing.T) {
	loc := schedule.Location("Europe/Berlin")
	night := store.QuietHours{StartMinute: 22 * 60, EndMinute: 7 * 60}
	lunch := store.QuietHours{StartMinute: 12 * 60, EndMinute: 13 * 60}
	tests := []struct {
		name string
		q    store.QuietHours
		at   string // local
		want string // local
	}{
		{"outside the window", night, "2026-05-01 12:00", "2026-05-01 12:00"},
		{"late evening waits for the morning", night, "2026-05-01 23:15", "2026-05-02 07:00"},
		{"early morning waits until the end", night, "2026-05-02 06:59", "2026-05-02 07:00"},
		{"the end itself is outside", night, "2026-05-02 07:00", "2026-05-02 07:00"},
		{"window that does not wrap", lunch, "2026-05-01 12:30", "2026-05-01 13:00"},
		{"no quiet hours", store.QuietHours{}, "2026-05-01 23:15", "2026-05-01 23:15"},
		{"across the spring-forward night", night, "2026-03-28 23:00", "2026-03-29 07:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at, err := time.ParseInLocation("2006-01-02 15:04", tc.at, loc)
			if err != nil {
				t.Fatal(err)
			}
			if got := schedule.DeferQuiet(at, tc.q, loc).In(loc).Format("2006-01-02 15:04"); got != tc.want {
				t.Fatalf("DeferQuiet(%s) = %s, want %s", tc.at, got, tc.want)
			}
		})
	}
}

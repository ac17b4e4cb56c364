package store

import (
	"testing"
	"time"
)

// TestDateString: the hand-written formatting gives what time's DateOnly
// layout gives, for every day of several years and for out-of-range
// fields (which time.Date normalises).
func TestDateString(t *testing.T) {
	viaTime := func(d Date) string {
		return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	var dates []Date
	for _, y := range []int{0, 1, 999, 1900, 2000, 2024, 2025, 2100, 9999} {
		for m := time.January; m <= time.December; m++ {
			for d := 1; d <= 31; d++ {
				dates = append(dates, Date{y, m, d})
			}
		}
	}
	dates = append(dates, Date{2025, 2, 29}, Date{2025, 4, 31}, Date{2025, 13, 1}, Date{2025, 0, 5},
		Date{2025, 1, 0}, Date{2025, 1, 32}, Date{10000, 1, 1}, Date{-1, 1, 1}, Date{9999, 12, 32})
	for _, d := range dates {
		if got, want := d.String(), viaTime(d); got != want {
			t.Errorf("%#v.String() = %q, want %q", d, got, want)
		}
	}
	if got := (Date{}).String(); got != "" {
		t.Errorf("zero date = %q, want empty", got)
	}
}

func BenchmarkDateString(b *testing.B) {
	d := Date{2026, 11, 30}
	for b.Loop() {
		_ = d.String()
	}
}

package bolt

import (
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// TestDateKeys: an index key's date reads back as the date written, and a
// key that is not a valid date is refused (its entry is skipped).
func TestDateKeys(t *testing.T) {
	for d := (store.Date{Year: 2023, Month: time.December, Day: 25}); d.Year < 2025; d = d.AddDays(1) {
		if got, err := parseDateKey(dateKey(d)); err != nil || got != d {
			t.Fatalf("parseDateKey(%q) = %v, %v; want %v", dateKey(d), got, err, d)
		}
	}
	for _, bad := range []string{"20250229", "20261301", "20260100", "20260431", "2026010", "2026010a", "+2026010", "-2026010", "202601011"} {
		if got, err := parseDateKey(bad); err == nil {
			t.Errorf("parseDateKey(%q) = %v, want an error", bad, got)
		}
	}
}

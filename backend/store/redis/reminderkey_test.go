package redisstore

import (
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

func TestPackMemberRoundTripsAndShortens(t *testing.T) {
	occ := time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)
	dose := store.Reminder{PatientID: "pt_5k2xabcdefghjkmnpqrs", Kind: store.ReminderDose, RefID: "ds_0123456789abcdefghjk", Occurrence: occ}
	snoozed := dose
	snoozed.Attempt = 2
	tests := []struct {
		name    string
		key     string
		shorter bool
	}{
		{"dose reminder", dose.Key(), true},
		{"snoozed", snoozed.Key(), true},
		{"one character", "a", true},
		{"two characters", "ab", false},
		{"upper case stays as it is", "PT_1|d.DS.tbw1c0", false},
		{"non-ASCII stays as it is", "pt_é|d.ds.tbw1c0", false},
		{"high first byte is escaped", "\xfdpt|d.ds.0", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := packMember(tt.key)
			if got := unpackMember(m); got != tt.key {
				t.Fatalf("unpackMember(packMember(%q)) = %q", tt.key, got)
			}
			if tt.shorter && len(m) >= len(tt.key) && len(tt.key) > 3 {
				t.Fatalf("packMember(%q) = %d bytes, want fewer than %d", tt.key, len(m), len(tt.key))
			}
		})
	}
	if len(packMember(dose.Key())) > 44 {
		t.Fatalf("a dose key packs to %d bytes, want at most 44 (one 48-byte allocation in Redis)", len(packMember(dose.Key())))
	}
	// Distinct keys stay distinct (padding included).
	seen := map[string]string{}
	for _, k := range []string{"a", "a0", "a00", "0", "00", "000", "ab|c", "ab|c0"} {
		m := packMember(k)
		if prev, ok := seen[m]; ok {
			t.Fatalf("%q and %q pack to the same member", prev, k)
		}
		seen[m] = k
	}
}

package clinical

import (
	"testing"
	"time"
)

func TestLocationIsLoadLocationRemembered(t *testing.T) {
	for _, name := range []string{"America/Chicago", "America/Chicago", "UTC", ""} {
		got, err := Location(name)
		want, werr := time.LoadLocation(name)
		if err != nil || werr != nil || got.String() != want.String() {
			t.Fatalf("Location(%q) = %v, %v; LoadLocation: %v, %v", name, got, err, want, werr)
		}
	}
	if _, err := Location("Not/AZone"); err == nil {
		t.Fatal("an unknown zone loaded")
	}
	if _, ok := zones.Load("Not/AZone"); ok {
		t.Fatal("an unknown zone was remembered")
	}
}

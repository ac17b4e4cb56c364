package clinical

import (
	"sync"
	"time"
)

// zones keeps the time zones already loaded: time.LoadLocation reads and
// parses the zone file on every call (12% of a work-list call's CPU).
var zones sync.Map // name → *time.Location

// Location is time.LoadLocation, remembered per name. Only zones that
// load are kept, so the map holds at most the IANA database's names.
func Location(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

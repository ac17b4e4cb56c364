package clinical

import (
	"slices"

	"github.com/mtmapp/mtm/backend/store"
)

// PMLOrder returns the Personal Medication List's rows in the order the
// patient reads them: medicines still taken first, then stopped ones (kept
// as history), each group in the order they were added. meds is not changed.
func PMLOrder(meds []store.Medication) []store.Medication {
	out := slices.Clone(meds)
	slices.SortStableFunc(out, func(a, b store.Medication) int {
		switch {
		case a.Active() == b.Active():
			return 0
		case a.Active():
			return -1
		default:
			return 1
		}
	})
	return out
}

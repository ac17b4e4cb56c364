package clinical

import (
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// Review kinds and delivery methods as the store keeps them.
const (
	ReviewCMR = "cmr" // Comprehensive Medication Review, at least annually
	ReviewTMR = "tmr" // Targeted Medication Review, at least quarterly
)

// CMRSummaryDays is how many days after a CMR its written summary in the
// CMS standardized format may be sent at the latest (CMS: within 14
// calendar days when not handed over at the review).
const CMRSummaryDays = 14

// LastCMR returns the date of the patient's most recent Comprehensive
// Medication Review; ok is false when there has been none.
func LastCMR(reviews []store.Review) (last store.Date, ok bool) {
	for _, r := range reviews {
		if r.Kind != ReviewCMR || r.ReviewedOn.IsZero() {
			continue
		}
		if !ok || last.Before(r.ReviewedOn) {
			last, ok = r.ReviewedOn, true
		}
	}
	return last, ok
}

// NextCMRDue returns the day the next Comprehensive Medication Review is
// due: one year after the last one (a review on 29 February is due on 28
// February, never later than a year), or enrolledOn when the patient has
// had none — a newly enrolled patient is due at once.
func NextCMRDue(reviews []store.Review, enrolledOn store.Date) store.Date {
	last, ok := LastCMR(reviews)
	if !ok {
		return enrolledOn
	}
	next := time.Date(last.Year+1, last.Month, last.Day, 0, 0, 0, 0, time.UTC)
	if next.Month() != last.Month { // 29 February in a non-leap year
		next = time.Date(last.Year+1, last.Month+1, 0, 0, 0, 0, 0, time.UTC)
	}
	return store.DateOf(next)
}

package clinical

import (
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

func TestNextCMRDue(t *testing.T) {
	enrolled := d("2025-06-15")
	tests := []struct {
		name    string
		reviews []store.Review
		want    string
	}{
		{"never reviewed: due at enrollment", nil, "2025-06-15"},
		{"only targeted reviews: still due at enrollment",
			[]store.Review{{Kind: ReviewTMR, ReviewedOn: d("2025-09-01")}}, "2025-06-15"},
		{"one year after the last CMR",
			[]store.Review{{Kind: ReviewCMR, ReviewedOn: d("2025-07-01")}}, "2026-07-01"},
		{"the latest CMR wins, whatever the order",
			[]store.Review{{Kind: ReviewCMR, ReviewedOn: d("2026-02-10")}, {Kind: ReviewCMR, ReviewedOn: d("2025-07-01")}, {Kind: ReviewTMR, ReviewedOn: d("2026-05-01")}}, "2027-02-10"},
		{"a CMR on 29 February is due on 28 February",
			[]store.Review{{Kind: ReviewCMR, ReviewedOn: d("2028-02-29")}}, "2029-02-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextCMRDue(tt.reviews, enrolled); got.String() != tt.want {
				t.Fatalf("NextCMRDue = %s, want %s", got, tt.want)
			}
		})
	}
}

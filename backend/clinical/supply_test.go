package clinical

import (
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

func d(s string) store.Date {
	v, err := store.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

func TestSupplyRunsThrough(t *testing.T) {
	tests := []struct {
		name  string
		fills []store.Fill
		want  string
	}{
		{"one 30-day fill covers 30 days including the fill day",
			[]store.Fill{{FilledOn: d("2026-01-01"), DaysSupply: 30}}, "2026-01-30"},
		{"refill after run-out starts on its own date",
			[]store.Fill{{FilledOn: d("2026-01-01"), DaysSupply: 30}, {FilledOn: d("2026-02-05"), DaysSupply: 30}}, "2026-03-06"},
		{"early refill carries remaining supply forward",
			[]store.Fill{{FilledOn: d("2026-01-01"), DaysSupply: 30}, {FilledOn: d("2026-01-25"), DaysSupply: 30}}, "2026-03-01"},
		{"refill on the day after run-out is contiguous",
			[]store.Fill{{FilledOn: d("2026-01-01"), DaysSupply: 30}, {FilledOn: d("2026-01-31"), DaysSupply: 30}}, "2026-03-01"},
		{"fills recorded out of order",
			[]store.Fill{{FilledOn: d("2026-01-25"), DaysSupply: 30}, {FilledOn: d("2026-01-01"), DaysSupply: 30}}, "2026-03-01"},
		{"leap day counted",
			[]store.Fill{{FilledOn: d("2028-02-01"), DaysSupply: 30}}, "2028-03-01"},
		{"three stacked early fills",
			[]store.Fill{{FilledOn: d("2026-01-01"), DaysSupply: 10}, {FilledOn: d("2026-01-02"), DaysSupply: 10}, {FilledOn: d("2026-01-03"), DaysSupply: 10}}, "2026-01-30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SupplyRunsThrough(tt.fills)
			if !ok || got.String() != tt.want {
				t.Fatalf("SupplyRunsThrough = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}
	if _, ok := SupplyRunsThrough(nil); ok {
		t.Fatal("no fills must report ok=false")
	}
}

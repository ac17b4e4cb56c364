package suite

import (
	"strings"
	"testing"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// Rate targets are judged against the bare handler; without a floor in the
// run they are not judged at all (never against Empty by default).
func TestTargetsAreRatiosToTheFloor(t *testing.T) {
	run := func(withFloor bool) loadtest.Report {
		phases := []loadtest.PhaseResult{
			{Name: scenario.PhaseBaseline, Ops: []loadtest.OpStats{{RateVsFloor: 0.85}}},
			{Name: scenario.PhasePML20, Ops: []loadtest.OpStats{{RateVsFloor: 0.45, P99VsFloor: 1.5}}},
			{Name: scenario.PhaseAppOpen, RateVsFloor: 0.41},
		}
		if withFloor {
			phases = append([]loadtest.PhaseResult{{Name: scenario.PhaseFloor, Ops: []loadtest.OpStats{{PerSec: 1}}}}, phases...)
		}
		return loadtest.Report{Runs: []loadtest.StoreRun{{Store: "bolt", Phases: phases}}}
	}
	want := map[string]bool{"Empty through": true, "20-medicine PML read rate": false, "20-medicine PML read p99": true, "app open": true}
	seen := 0
	for _, tg := range Targets(run(true)) {
		if !strings.HasSuffix(tg.Name, "(bolt)") {
			continue
		}
		for prefix, met := range want {
			if strings.HasPrefix(tg.Name, prefix) {
				seen++
				if !tg.Measured || tg.Met != met {
					t.Errorf("%s: measured %v met %v (got %.2f), want met %v", tg.Name, tg.Measured, tg.Met, tg.Got, met)
				}
			}
		}
	}
	if seen != len(want) {
		t.Errorf("found %d of the %d bolt rate targets", seen, len(want))
	}
	for _, tg := range Targets(run(false)) {
		if strings.HasSuffix(tg.Name, "(bolt)") && !strings.HasPrefix(tg.Name, "reminder") && (tg.Measured || !strings.Contains(tg.Note, "floor")) {
			t.Errorf("%s judged without a floor: %+v", tg.Name, tg)
		}
	}
}

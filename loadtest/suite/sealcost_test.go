package suite

import (
	"math"
	"testing"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// TestSealCostUsesEachRunsYardstick: a machine twice as busy during the
// sealed run halves both its rates and its yardsticks; the reported cost
// is the sealing's, not the machine's.
func TestSealCostUsesEachRunsYardstick(t *testing.T) {
	run := func(pml, floorRatio, drain, vsSDK float64) loadtest.StoreRun {
		return loadtest.StoreRun{
			Phases:  []loadtest.PhaseResult{{Name: scenario.PhasePML20, Ops: []loadtest.OpStats{{PerSec: pml, RateVsFloor: floorRatio}}}},
			Figures: map[string]float64{"reminder burst: drained reminders/s": drain, FigureBurstVsSDK: vsSDK},
		}
	}
	sealed := run(500, 0.19, 1000, 0.57) // on a machine half as fast: 5% and 5% slower than unsealed
	unsealed := run(1000, 0.20, 2000, 0.60)
	addSealCost(&sealed, unsealed)
	for name, want := range map[string]float64{FigureSealPML: 0.95, FigureSealBurst: 0.95, FigureSealPMLRaw: 0.5, FigureSealBurstRaw: 0.5} {
		if got := sealed.Figures[name]; math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

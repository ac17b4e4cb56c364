package suite

import (
	"math"
	"strings"
	"testing"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// Rate targets are judged against the bare handler: Empty against the
// empty floor, the PML read and app open against the same bare server
// sending the same answers (and, as first set, against the empty floor).
// Without a floor in the run nothing is judged (never against mtmd's own
// Empty by default).
func TestTargetsAreRatiosToTheFloor(t *testing.T) {
	run := func(withFloor, withAnswers bool) loadtest.Report {
		phases := []loadtest.PhaseResult{
			{Name: scenario.PhaseBaseline, Ops: []loadtest.OpStats{{RateVsFloor: 0.85}}},
			{Name: scenario.PhasePML20, Ops: []loadtest.OpStats{{PerSec: 450, P99Ms: 30, RateVsFloor: 0.15, P99VsFloor: 3}}},
			{Name: scenario.PhaseAppOpen, CallsPerSec: 300, RateVsFloor: 0.1},
		}
		if withFloor {
			phases = append([]loadtest.PhaseResult{{Name: scenario.PhaseFloor, Ops: []loadtest.OpStats{{PerSec: 3000, P99Ms: 10}}}}, phases...)
		}
		if withAnswers {
			phases = append(phases,
				loadtest.PhaseResult{Name: scenario.PhaseFloorPML, Ops: []loadtest.OpStats{{PerSec: 1000, P99Ms: 20, RateVsFloor: 0.33, P99VsFloor: 2}}},
				loadtest.PhaseResult{Name: scenario.PhaseFloorAppOpen, CallsPerSec: 1000, RateVsFloor: 0.33})
		}
		return loadtest.Report{Runs: []loadtest.StoreRun{{Store: "bolt", Phases: phases}}}
	}
	type want struct {
		met bool
		got float64
	}
	wants := map[string]want{
		"Empty through": {true, 0.85},
		"20-medicine PML read rate / bare handler sending": {false, 0.45},
		"20-medicine PML read p99 / bare handler sending":  {true, 1.5},
		"app open calls/s / bare handler sending":          {false, 0.3},
		"20-medicine PML read rate / bare Empty":           {false, 0.15},
		"20-medicine PML read p99 / bare Empty":            {false, 3},
		"app open calls/s / bare Empty":                    {false, 0.1},
	}
	seen := 0
	for _, tg := range Targets(run(true, true)) {
		if !strings.HasSuffix(tg.Name, "(bolt)") {
			continue
		}
		for prefix, w := range wants {
			if strings.HasPrefix(tg.Name, prefix) {
				seen++
				if !tg.Measured || tg.Met != w.met || math.Abs(tg.Got-w.got) > 1e-9 {
					t.Errorf("%s: measured %v met %v got %.2f, want met %v at %.2f", tg.Name, tg.Measured, tg.Met, tg.Got, w.met, w.got)
				}
				// As first set, the note says how far the answers alone
				// bring the bare handler.
				if strings.Contains(tg.Name, "bare Empty") && !strings.Contains(tg.Note, "same answers reaches") {
					t.Errorf("%s: note %q does not give the answer floor's own ratio", tg.Name, tg.Note)
				}
			}
		}
	}
	if seen != len(wants) {
		t.Errorf("found %d of the %d bolt rate targets", seen, len(wants))
	}
	for _, tg := range Targets(run(true, false)) {
		if strings.Contains(tg.Name, "sending the same") && strings.HasSuffix(tg.Name, "(bolt)") && (tg.Measured || tg.Note != "no answer floor in this run") {
			t.Errorf("%s judged without its answer floor: %+v", tg.Name, tg)
		}
	}
	for _, tg := range Targets(run(false, false)) {
		if strings.HasSuffix(tg.Name, "(bolt)") && !strings.HasPrefix(tg.Name, "reminder") && !strings.HasPrefix(tg.Name, "work lists") && (tg.Measured || !strings.Contains(tg.Note, "floor")) {
			t.Errorf("%s judged without a floor: %+v", tg.Name, tg)
		}
	}
}

// The work lists are judged on the large pharmacy against the small one,
// list by list: one list that grows with the pharmacy fails the target
// even when the others are flat.
func TestWorklistTargetsTakeTheWorstList(t *testing.T) {
	phase := func(name string, followUpP99 float64) loadtest.PhaseResult {
		return loadtest.PhaseResult{Name: name, Ops: []loadtest.OpStats{
			{Name: "CareService/ListPatientsDueForCmr", PerSec: 100, P99Ms: 10},
			{Name: "CareService/ListOverdueFollowUps", PerSec: 100, P99Ms: followUpP99},
		}}
	}
	rep := func(largeP99 float64) loadtest.Report {
		return loadtest.Report{Runs: []loadtest.StoreRun{{Store: "redis", Phases: []loadtest.PhaseResult{
			phase(scenario.PhaseWorklists(2500), largeP99), phase(scenario.PhaseWorklists(250), 10),
		}}}}
	}
	judge := func(r loadtest.Report) (p99 loadtest.Target) {
		for _, tg := range Targets(r) {
			if strings.HasPrefix(tg.Name, "work lists: p99") && strings.HasSuffix(tg.Name, "(redis)") {
				return tg
			}
		}
		t.Fatal("no work-list p99 target for redis")
		return
	}
	if tg := judge(rep(12)); !tg.Measured || !tg.Met || tg.Got != 1.2 {
		t.Errorf("flat lists: %+v, want met at 1.2", tg)
	}
	if tg := judge(rep(40)); !tg.Measured || tg.Met || tg.Got != 4 {
		t.Errorf("follow-ups 4× slower at ten times the patients: %+v, want not met at 4", tg)
	}
}

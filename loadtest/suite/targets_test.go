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

// A rate target says how far the load generator's own cost per call caps
// it: with the floor costing 50 µs on each side and a PML read costing the
// client 150 µs, a server as cheap as the bare handler reaches 0.50×.
func TestRateTargetsNameTheClientCeiling(t *testing.T) {
	floor := loadtest.PhaseResult{Name: scenario.PhaseFloor, ServerCPUPerCallUs: 50, ClientCPUPerCallUs: 50, Ops: []loadtest.OpStats{{PerSec: 1}}}
	pml := loadtest.PhaseResult{Name: scenario.PhasePML20, ServerCPUPerCallUs: 300, ClientCPUPerCallUs: 150, Ops: []loadtest.OpStats{{RateVsFloor: 0.2, P99VsFloor: 3}}}
	if got := ClientCeiling(floor, pml); got < 0.499 || got > 0.501 {
		t.Fatalf("ClientCeiling = %.3f, want 0.50", got)
	}
	rep := loadtest.Report{Runs: []loadtest.StoreRun{{Store: "redis", Phases: []loadtest.PhaseResult{floor, pml}}}}
	for _, tg := range Targets(rep) {
		if strings.HasPrefix(tg.Name, "20-medicine PML read rate") && strings.HasSuffix(tg.Name, "(redis)") {
			if !strings.Contains(tg.Note, "0.50×") || !strings.Contains(tg.Note, "150 µs/call") {
				t.Errorf("PML read rate note = %q, want the 0.50× ceiling and the client's 150 µs/call", tg.Note)
			}
			return
		}
	}
	t.Fatal("no PML read rate target for redis")
}

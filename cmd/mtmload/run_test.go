package main

import (
	"strings"
	"testing"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/suite"
)

// A burst that stalls part-way fails the run under --fail-on-errors, even
// with every measured call successful and a drain rate that looks met.
func TestFailuresCountsABurstThatStalled(t *testing.T) {
	run := func(due, pushes, distinct float64) loadtest.Report {
		return loadtest.Report{Runs: []loadtest.StoreRun{{Store: "redis", Figures: map[string]float64{
			suite.FigureBurstDue: due, suite.FigureBurstPushes: pushes, suite.FigureBurstDistinct: distinct, suite.FigureBurstVsSDK: 0.9,
		}}}}
	}
	if err := failures(run(2000, 2000, 2000)); err != nil {
		t.Fatalf("every reminder pushed: %v", err)
	}
	// As many pushes as reminders, but one reminder pushed twice (by both
	// instances) and another never.
	if err := failures(run(2000, 2000, 1999)); err == nil || !strings.Contains(err.Error(), "1999 distinct reminders pushed for 2000 due") {
		t.Fatalf("one reminder pushed twice, one never: %v, want a failure", err)
	}
	err := failures(run(2000, 1500, 1500))
	if err == nil || !strings.Contains(err.Error(), "1500 pushes accepted for 2000 reminders due") {
		t.Fatalf("burst stalled at 1500 of 2000: %v, want a failure naming both", err)
	}
	for _, tg := range suite.Targets(run(2000, 1500, 1500)) {
		if strings.HasPrefix(tg.Name, "reminder burst") && strings.Contains(tg.Name, "redis") && tg.Met {
			t.Fatalf("target %q met with a stalled burst", tg.Name)
		}
	}
}

// Rotation under load that lost an acknowledged write or failed a step
// fails the run under --fail-on-errors, with every measured call
// successful.
func TestFailuresCountsRotationUnderLoad(t *testing.T) {
	run := func(failedSteps, lost float64) loadtest.Report {
		return loadtest.Report{Runs: []loadtest.StoreRun{{Store: "redis", Figures: map[string]float64{
			suite.FigureRotationPasses: 3, suite.FigureRotationErrors: failedSteps,
			suite.FigureRotationDosesAcked: 1000, suite.FigureRotationLostDoses: lost, suite.FigureRotationPatientsRead: 2000,
		}}}}
	}
	if err := failures(run(0, 0)); err != nil {
		t.Fatalf("clean rotation: %v", err)
	}
	if err := failures(run(0, 1)); err == nil || !strings.Contains(err.Error(), "1 of 1000 acknowledged dose confirmations lost") {
		t.Fatalf("one write lost: %v, want a failure", err)
	}
	if err := failures(run(2, 0)); err == nil || !strings.Contains(err.Error(), "2 re-encryption steps failed") {
		t.Fatalf("two failed steps: %v, want a failure", err)
	}
}

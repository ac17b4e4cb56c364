package suite

import (
	"fmt"
	"strings"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
)

// Figure names that targets read from StoreRun.Figures.
const (
	FigureBurstVsSDK  = "reminder burst: drain rate / raw SDK rate"
	FigureUndelivered = "messages not seen by a watcher 2s after the phase"
	FigureBurstDue    = "reminder burst: reminders due at once"
	FigureBurstPushes = "reminder burst: pushes accepted by fake FCM"
)

// Targets evaluates the targets against a report. A target whose
// measurement is missing (store not run, feature not served) is listed
// with a note rather than left out.
func Targets(rep loadtest.Report) []loadtest.Target {
	var out []loadtest.Target
	pmlWant := map[string]float64{"bolt": 0.50, "redis": 0.35}
	for _, store := range []string{"bolt", "redis"} {
		rateT := loadtest.Target{Name: fmt.Sprintf("20-medicine PML read rate / empty-RPC rate (%s)", store), Want: fmt.Sprintf("≥ %.2f", pmlWant[store]), Unit: "×"}
		p99T := loadtest.Target{Name: fmt.Sprintf("20-medicine PML read p99 / empty-RPC p99 (%s)", store), Want: "≤ 2.00", Unit: "×"}
		run, ok := findRun(rep, store)
		var pml loadtest.OpStats
		if ok {
			pml, ok = phaseOp(run, scenario.PhasePML20)
		}
		if !ok || pml.RateVsBaseline == 0 {
			rateT.Note, p99T.Note = "not run", "not run"
		} else {
			rateT.Got, rateT.Met, rateT.Measured = pml.RateVsBaseline, pml.RateVsBaseline >= pmlWant[store], true
			p99T.Got, p99T.Met, p99T.Measured = pml.P99VsBaseline, pml.P99VsBaseline <= 2, true
		}
		out = append(out, rateT, p99T)
	}

	for _, store := range []string{"bolt", "redis"} {
		burst := loadtest.Target{Name: fmt.Sprintf("reminder burst drain rate / raw SDK send rate (%s)", store), Want: "≥ 0.75", Unit: "×", Note: "not run"}
		if run, ok := findRun(rep, store); ok {
			if v, ok := run.Figures[FigureBurstVsSDK]; ok {
				burst.Got, burst.Met, burst.Note, burst.Measured = v, v >= 0.75, "", true
				if err := BurstIncomplete(run); err != nil {
					burst.Met, burst.Note = false, err.Error()
				}
			}
		}
		out = append(out, burst)
	}

	watch := loadtest.Target{Name: "send→watcher p99, two instances on Redis", Want: "≤ 50 ms", Unit: "ms", Note: "not run"}
	if run, ok := findRun(rep, "redis"); ok {
		if op, ok := phaseOp(run, scenario.OpSendToWatcher); ok && op.OK > 0 {
			watch.Got, watch.Met, watch.Note, watch.Measured = op.P99Ms, op.P99Ms <= 50, "", true
		} else if _, ok := phaseOp(run, scenario.PhaseMessaging); ok {
			watch.Measured, watch.Note = true, "no message reached the watcher on the other instance"
		}
		if n := run.Figures[FigureUndelivered]; n > 0 && watch.Measured {
			watch.Met = false
			watch.Note = strings.TrimPrefix(watch.Note+fmt.Sprintf("; %.0f messages never reached their watcher", n), "; ")
		}
	}
	out = append(out, watch)
	return out
}

func findRun(rep loadtest.Report, store string) (loadtest.StoreRun, bool) {
	for _, r := range rep.Runs {
		if r.Store == store {
			return r, true
		}
	}
	return loadtest.StoreRun{}, false
}

// phaseOp finds an operation by name in any phase of the run.
func phaseOp(run loadtest.StoreRun, name string) (loadtest.OpStats, bool) {
	for _, p := range run.Phases {
		if p.Name == name && len(p.Ops) > 0 {
			return p.Ops[0], true
		}
		if op, ok := p.Op(name); ok {
			return op, true
		}
	}
	return loadtest.OpStats{}, false
}

// BurstIncomplete reports a reminder burst whose pushes accepted by the
// fake FCM differ from the reminders that were due: a burst that stalled
// part-way (or sent some twice) has not been measured, whatever its rate.
func BurstIncomplete(run loadtest.StoreRun) error {
	due, ok := run.Figures[FigureBurstDue]
	if !ok {
		return nil
	}
	if pushes := run.Figures[FigureBurstPushes]; pushes != due {
		return fmt.Errorf("%.0f pushes accepted for %.0f reminders due", pushes, due)
	}
	return nil
}

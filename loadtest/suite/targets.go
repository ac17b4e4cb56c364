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
	// FigureRedisBytesPerPatient is the growth of Redis used_memory over
	// the seeding, per seeded patient (records, indexes, sessions, grants).
	FigureRedisBytesPerPatient = "Redis used_memory per seeded patient (bytes)"
	FigureBurstPushes          = "reminder burst: pushes accepted by fake FCM"
	// OpSendMessage is the messaging phase's send.
	OpSendMessage       = "MessagingService/SendMessage"
	FigureBurstDistinct = "reminder burst: distinct reminders pushed"
	// FigureBurstReadyBeforeDue is how long before the due time the
	// reminders were written and mtmd up (seconds; ≤ 0: the timing of the
	// burst is not judged).
	FigureBurstReadyBeforeDue = "reminder burst: ready before due (s)"
	FigureBurstFirstMs        = "reminder burst: first push (ms after due)"
	FigureBurstP99Ms          = "reminder burst: lateness p99 (ms after due)"
)

// Targets evaluates the targets against a report. Rates and p99s
// are ratios to a bare connect-go handler measured in the same run: the
// empty one (the floor) for Empty, and the same bare server replaying
// mtmd's own answers (the answer floors, scenario.RecordAnswers) for the
// PML read and the app open. The PML read and app open are also judged
// against the empty floor, as the issue first set them; their note gives
// the answer floor's own ratio to the empty one, the most any server that
// sends those answers could reach. A target whose measurement is missing
// (store not run, no floor) is listed with a note rather than left out.
func Targets(rep loadtest.Report) []loadtest.Target {
	var out []loadtest.Target
	for _, store := range []string{"bolt", "redis"} {
		empty := loadtest.Target{Name: fmt.Sprintf("Empty through the stack / bare handler rate (%s)", store), Want: "≥ 0.80", Unit: "×"}
		rateT := loadtest.Target{Name: fmt.Sprintf("20-medicine PML read rate / bare handler sending the same PML (%s)", store), Want: "≥ 0.50", Unit: "×"}
		p99T := loadtest.Target{Name: fmt.Sprintf("20-medicine PML read p99 / bare handler sending the same PML (%s)", store), Want: "≤ 2.00", Unit: "×"}
		open := loadtest.Target{Name: fmt.Sprintf("app open calls/s / bare handler sending the same answers (%s)", store), Want: "≥ 0.40", Unit: "×"}
		rateE := loadtest.Target{Name: fmt.Sprintf("20-medicine PML read rate / bare Empty rate, as first set (%s)", store), Want: "≥ 0.50", Unit: "×"}
		p99E := loadtest.Target{Name: fmt.Sprintf("20-medicine PML read p99 / bare Empty p99, as first set (%s)", store), Want: "≤ 2.00", Unit: "×"}
		openE := loadtest.Target{Name: fmt.Sprintf("app open calls/s / bare Empty rate, as first set (%s)", store), Want: "≥ 0.40", Unit: "×"}
		run, ok := findRun(rep, store)
		note := "not run"
		if ok {
			if _, floor := findPhase(run, scenario.PhaseFloor); !floor {
				ok, note = false, "no bare-handler floor in this run"
			}
		}
		judge := func(t *loadtest.Target, got float64, met func(float64) bool) {
			if !ok || got == 0 {
				t.Note = note
				return
			}
			t.Got, t.Met, t.Measured = got, met(got), true
		}
		atLeast := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
		atMost := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
		if base, found := findPhase(run, scenario.PhaseBaseline); found && len(base.Ops) > 0 {
			judge(&empty, base.Ops[0].RateVsFloor, atLeast(0.8))
		} else {
			empty.Note = note
		}
		pml, hasPML := findPhase(run, scenario.PhasePML20)
		hasPML = hasPML && len(pml.Ops) > 0
		floorPML, hasFloorPML := findPhase(run, scenario.PhaseFloorPML)
		hasFloorPML = hasFloorPML && len(floorPML.Ops) > 0
		if hasPML {
			judge(&rateE, pml.Ops[0].RateVsFloor, atLeast(0.5))
			judge(&p99E, pml.Ops[0].P99VsFloor, atMost(2))
		} else {
			rateE.Note, p99E.Note = note, note
		}
		if hasPML && hasFloorPML {
			judge(&rateT, ratio(pml.Ops[0].PerSec, floorPML.Ops[0].PerSec), atLeast(0.5))
			judge(&p99T, ratio(pml.Ops[0].P99Ms, floorPML.Ops[0].P99Ms), atMost(2))
			ceilingNote(&rateE, floorPML.Ops[0].RateVsFloor)
			ceilingNote(&p99E, floorPML.Ops[0].P99VsFloor)
		} else {
			rateT.Note = answerNote(ok, note, hasPML)
			p99T.Note = rateT.Note
		}
		app, hasApp := findPhase(run, scenario.PhaseAppOpen)
		floorApp, hasFloorApp := findPhase(run, scenario.PhaseFloorAppOpen)
		if hasApp {
			judge(&openE, app.RateVsFloor, atLeast(0.4))
		} else {
			openE.Note = note
		}
		if hasApp && hasFloorApp {
			judge(&open, ratio(app.CallsPerSec, floorApp.CallsPerSec), atLeast(0.4))
			ceilingNote(&openE, floorApp.RateVsFloor)
		} else {
			open.Note = answerNote(ok, note, hasApp)
		}
		out = append(out, empty, rateT, p99T, open, rateE, p99E, openE)
	}

	for _, store := range []string{"bolt", "redis"} {
		burst := loadtest.Target{Name: fmt.Sprintf("reminder burst drain rate / raw SDK send rate (%s)", store), Want: "≥ 0.75", Unit: "×", Note: "not run"}
		if run, ok := findRun(rep, store); ok {
			if v, ok := run.Figures[FigureBurstVsSDK]; ok {
				burst.Got, burst.Met, burst.Note, burst.Measured = v, v >= 0.75, "", true
				if err := BurstIncomplete(run); err != nil {
					burst.Met, burst.Note = false, err.Error()
				} else if late(run) {
					burst.Measured, burst.Note = false, lateNote
				}
			}
		}
		first := loadtest.Target{Name: fmt.Sprintf("reminder burst first push after the due time (%s)", store), Want: "≤ 1000", Unit: "ms", Note: "not run"}
		if run, ok := findRun(rep, store); ok {
			if _, ok := run.Figures[FigureBurstDue]; ok {
				v := run.Figures[FigureBurstFirstMs]
				first.Got, first.Met, first.Measured = v, v <= 1000, true
				first.Note = fmt.Sprintf("lateness p99 %.0f ms", run.Figures[FigureBurstP99Ms])
				if err := BurstIncomplete(run); err != nil {
					first.Met, first.Note = false, err.Error()
				} else if late(run) {
					first.Measured, first.Note = false, lateNote
				}
			}
		}
		out = append(out, burst, first)
	}

	for _, store := range []string{"bolt", "redis"} {
		out = append(out, worklistTargets(rep, store)...)
	}

	watch := loadtest.Target{Name: "send→watcher p99 at 500 messages/s, two instances on Redis", Want: "≤ 50 ms", Unit: "ms", Note: "not run"}
	rate, _ := rep.Settings["messaging_rate"].(float64)
	if run, ok := findRun(rep, "redis"); ok && rate < 500 {
		watch.Note = fmt.Sprintf("run at %.0f messages/s; the target is at 500 (--messaging-rate 500)", rate)
		if op, ok := phaseOp(run, scenario.OpSendToWatcher); ok {
			watch.Got = op.P99Ms
		}
	} else if ok {
		if op, ok := phaseOp(run, scenario.OpSendToWatcher); ok && op.OK > 0 {
			watch.Got, watch.Met, watch.Note, watch.Measured = op.P99Ms, op.P99Ms <= 50, "", true
			// The pacer drops what busy workers cannot send: judge the
			// rate reached, not the rate asked for.
			if sent, ok := phaseOp(run, OpSendMessage); ok {
				watch.Note = fmt.Sprintf("%.0f messages/s sent", sent.PerSec)
				if sent.PerSec < 0.9*rate {
					watch.Met = false
					watch.Note = fmt.Sprintf("only %.0f of %.0f messages/s sent", sent.PerSec, rate)
				}
			}
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

// ratio is a / b, 0 when b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// ceilingNote notes on a target judged against the empty floor what the
// bare handler sending the same answers reached against it (what of the
// figure is the answers' own cost, which no server can skip).
func ceilingNote(t *loadtest.Target, answerFloorVsEmpty float64) {
	if !t.Measured || answerFloorVsEmpty == 0 {
		return
	}
	t.Note = fmt.Sprintf("on its own, the bare handler sending the same answers reaches %.2f×", answerFloorVsEmpty)
}

// answerNote says why a target against an answer floor was not judged:
// the run's note when the store or its empty floor is missing, otherwise
// what else is.
func answerNote(ok bool, note string, phaseRan bool) string {
	switch {
	case !ok:
		return note
	case !phaseRan:
		return "not run"
	default:
		return "no answer floor in this run"
	}
}

func findRun(rep loadtest.Report, store string) (loadtest.StoreRun, bool) {
	for _, r := range rep.Runs {
		if r.Store == store {
			return r, true
		}
	}
	return loadtest.StoreRun{}, false
}

func findPhase(run loadtest.StoreRun, name string) (loadtest.PhaseResult, bool) {
	for _, p := range run.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return loadtest.PhaseResult{}, false
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
	if distinct := run.Figures[FigureBurstDistinct]; distinct != due {
		return fmt.Errorf("%.0f distinct reminders pushed for %.0f due", distinct, due)
	}
	return nil
}

// worklistTargets judges that the work lists answer in bounded time: the
// large pharmacy's calls (ten times the patients) as fast as the small
// one's, list by list (the worst list counts).
func worklistTargets(rep loadtest.Report, store string) []loadtest.Target {
	rate := loadtest.Target{Name: fmt.Sprintf("work lists: calls/s, large pharmacy / small pharmacy, worst list (%s)", store), Want: "≥ 0.80", Unit: "×", Note: "not run"}
	p99 := loadtest.Target{Name: fmt.Sprintf("work lists: p99, large pharmacy / small pharmacy, worst list (%s)", store), Want: "≤ 1.50", Unit: "×", Note: "not run"}
	run, ok := findRun(rep, store)
	if !ok {
		return []loadtest.Target{rate, p99}
	}
	var phases []loadtest.PhaseResult
	for _, p := range run.Phases {
		if strings.HasPrefix(p.Name, "work lists (") {
			phases = append(phases, p)
		}
	}
	if len(phases) != 2 {
		return []loadtest.Target{rate, p99}
	}
	large, small := phases[0], phases[1]
	worstRate, worstP99 := 0.0, 0.0
	for _, op := range small.Ops {
		l, ok := large.Op(op.Name)
		if !ok || op.PerSec == 0 || op.P99Ms == 0 {
			continue
		}
		if r := l.PerSec / op.PerSec; worstRate == 0 || r < worstRate {
			worstRate = r
		}
		worstP99 = max(worstP99, l.P99Ms/op.P99Ms)
	}
	note := large.Name + " vs " + small.Name
	if worstRate > 0 {
		rate.Got, rate.Met, rate.Measured, rate.Note = worstRate, worstRate >= 0.8, true, note
		p99.Got, p99.Met, p99.Measured, p99.Note = worstP99, worstP99 <= 1.5, true, note
	}
	return []loadtest.Target{rate, p99}
}

// late reports a burst whose reminders were written or whose mtmd
// started only after they were due (a machine too busy to set it up in
// time): its timing says nothing about the dispatchers.
func late(run loadtest.StoreRun) bool {
	v, ok := run.Figures[FigureBurstReadyBeforeDue]
	return ok && v <= 0
}

const lateNote = "not judged: the reminders were written or mtmd started after they were due"

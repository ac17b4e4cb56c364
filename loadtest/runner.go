package loadtest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Load bounds one run of a phase: Concurrency workers call the phase's
// Iterate in a closed loop until Duration has passed or MaxIterations
// iterations have started (0: no count bound), whichever comes first.
type Load struct {
	Concurrency   int
	Duration      time.Duration
	MaxIterations int64
}

// Phase is one measured workload.
type Phase struct {
	// Name identifies the phase in the report; runs of phases with the same
	// name accumulate into one result (so that phases can be interleaved
	// in rounds on a noisy machine).
	Name string
	// Baseline names the phase this one is compared to ("" for none).
	Baseline string
	// Paced marks a phase whose rate is set by the scenario (open loop),
	// not by how fast the server answers: its rate is not compared to the
	// baseline's.
	Paced bool
	// Derived names operations the scenario records that are not calls
	// to the server (e.g. a message's trip to its watcher): they are
	// reported, but not counted in the phase's calls, calls/s and server
	// CPU per call.
	Derived []string
	Load    Load
	// ServerCPU, when set, reads the CPU time of the servers this phase
	// drives instead of the Runner's (the bare floor runs in its own
	// process).
	ServerCPU CPUClock
	// Iterate runs one iteration (e.g. one app open) as worker w. Its
	// context carries the phase's Recorder (RecorderFrom): the RPCs it
	// makes through clients built with Interceptor are measured. An error
	// counts as a failed iteration; the phase goes on.
	Iterate func(ctx context.Context, worker int) error
}

// CPUClock reads the CPU time the servers under test have used so far.
type CPUClock func() (time.Duration, error)

// Runner runs phases and accumulates their results. It is not safe for
// concurrent use: phases run one at a time, so that each one's server CPU
// time is its own.
type Runner struct {
	// Label prefixes the progress line (e.g. "bolt").
	Label string
	// ServerCPU, when set, is read before and after each phase.
	ServerCPU CPUClock
	// ClientCPU, when set, reads the load generator's own CPU time, read
	// like ServerCPU: on one machine the client's cost per call is part of
	// every rate, the floor's included.
	ClientCPU CPUClock
	// Progress receives a progress line about once a second; nil for none.
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Floor names the phase every other phase is also compared with (the
	// bare connect-go handler); "" for none.
	Floor string

	order   []string
	results map[string]*phaseAcc
}

type phaseAcc struct {
	baseline   string
	paced      bool
	workers    int
	rec        *Recorder
	elapsed    time.Duration
	iterations int64
	iterFailed int64
	cpu        time.Duration
	cpuKnown   bool
	clientCPU  time.Duration
	derived    []string
}

// Run runs p once and adds what it measured to p.Name's result. It returns
// an error only when the server CPU time cannot be read or ctx ends before
// the phase started.
func (r *Runner) Run(ctx context.Context, p Phase) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	now := r.Now
	if now == nil {
		now = time.Now
	}
	if r.results == nil {
		r.results = map[string]*phaseAcc{}
	}
	acc := r.results[p.Name]
	if acc == nil {
		acc = &phaseAcc{baseline: p.Baseline, paced: p.Paced, workers: p.Load.Concurrency, rec: NewRecorder(), cpuKnown: r.ServerCPU != nil || p.ServerCPU != nil,
			derived: p.Derived}
		r.results[p.Name] = acc
		r.order = append(r.order, p.Name)
	}
	cpuClock := r.ServerCPU
	if p.ServerCPU != nil {
		cpuClock = p.ServerCPU
	}
	var cpu0, client0 time.Duration
	if cpuClock != nil {
		c, err := cpuClock()
		if err != nil {
			return fmt.Errorf("loadtest.Run %s: server CPU: %w", p.Name, err)
		}
		cpu0 = c
	}
	if r.ClientCPU != nil {
		c, err := r.ClientCPU()
		if err != nil {
			return fmt.Errorf("loadtest.Run %s: client CPU: %w", p.Name, err)
		}
		client0 = c
	}

	// Iterations that have started finish with the parent context: ending
	// the phase must not cancel calls in flight (they would count as
	// errors and their latencies would be lost).
	callCtx := WithRecorder(ctx, acc.rec)
	var stop atomic.Bool
	timer := time.AfterFunc(p.Load.Duration, func() { stop.Store(true) })
	defer timer.Stop()
	var started, failed atomic.Int64
	var wg sync.WaitGroup
	start := now()
	stopProgress := r.progress(p.Name, acc.rec, start, now)
	for w := range max(p.Load.Concurrency, 1) {
		wg.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				if n := started.Add(1); p.Load.MaxIterations > 0 && n > p.Load.MaxIterations {
					started.Add(-1)
					return
				}
				if err := p.Iterate(callCtx, w); err != nil && ctx.Err() == nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := now().Sub(start)
	stopProgress()

	if cpuClock != nil {
		c, err := cpuClock()
		if err != nil {
			return fmt.Errorf("loadtest.Run %s: server CPU: %w", p.Name, err)
		}
		acc.cpu += c - cpu0
	}
	if r.ClientCPU != nil {
		c, err := r.ClientCPU()
		if err != nil {
			return fmt.Errorf("loadtest.Run %s: client CPU: %w", p.Name, err)
		}
		acc.clientCPU += c - client0
	}
	acc.elapsed += elapsed
	acc.iterations += started.Load()
	acc.iterFailed += failed.Load()
	return nil
}

// progress prints a line about once a second until the returned function is
// called, which ends the line.
func (r *Runner) progress(name string, rec *Recorder, start time.Time, now func() time.Time) func() {
	if r.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	base, _ := rec.Count()
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				total, failed := rec.Count()
				secs := now().Sub(start).Seconds()
				fmt.Fprintf(r.Progress, "\r%-8s %-28s %6.1fs %9d calls %8.0f/s %6d errors ", r.Label, name, secs, total-base, float64(total-base)/secs, failed)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		fmt.Fprintf(r.Progress, "\r%-8s %-28s done%60s\n", r.Label, name, "")
	}
}

// Results returns each phase's accumulated result, in the order the phases
// first ran, with the ratios to their baselines filled in.
func (r *Runner) Results() []PhaseResult {
	out := make([]PhaseResult, 0, len(r.order))
	byName := map[string]PhaseResult{}
	for _, name := range r.order {
		acc := r.results[name]
		res := PhaseResult{
			Name:             name,
			Baseline:         acc.baseline,
			Workers:          acc.workers,
			Seconds:          acc.elapsed.Seconds(),
			Iterations:       acc.iterations,
			FailedIterations: acc.iterFailed,
			Ops:              acc.rec.Snapshot(),
		}
		for _, op := range res.Ops {
			if !slices.Contains(acc.derived, op.Name) {
				res.Calls += op.Total()
			}
		}
		if res.Seconds > 0 {
			res.CallsPerSec = float64(res.Calls) / res.Seconds
			for i := range res.Ops {
				res.Ops[i].PerSec = float64(res.Ops[i].Total()) / res.Seconds
			}
		}
		if acc.cpuKnown {
			res.ServerCPUSeconds = acc.cpu.Seconds()
			if res.Calls > 0 {
				res.ServerCPUPerCallUs = acc.cpu.Seconds() * 1e6 / float64(res.Calls)
			}
		}
		if r.ClientCPU != nil && res.Calls > 0 {
			res.ClientCPUPerCallUs = acc.clientCPU.Seconds() * 1e6 / float64(res.Calls)
		}
		byName[name] = res
		out = append(out, res)
	}
	floor, hasFloor := byName[r.Floor]
	hasFloor = hasFloor && len(floor.Ops) > 0
	for i, res := range out {
		if !hasFloor || res.Name == r.Floor {
			continue
		}
		f := floor.Ops[0]
		paced := r.results[res.Name].paced
		if f.PerSec > 0 && !paced {
			out[i].RateVsFloor = res.CallsPerSec / f.PerSec
		}
		for j, op := range res.Ops {
			if f.PerSec > 0 && !paced {
				out[i].Ops[j].RateVsFloor = op.PerSec / f.PerSec
			}
			if f.P99Ms > 0 {
				out[i].Ops[j].P99VsFloor = op.P99Ms / f.P99Ms
			}
		}
		if floor.ServerCPUPerCallUs > 0 {
			out[i].CPUVsFloor = res.ServerCPUPerCallUs / floor.ServerCPUPerCallUs
		}
	}
	for i, res := range out {
		base, ok := byName[res.Baseline]
		if !ok || len(base.Ops) == 0 {
			continue
		}
		b := base.Ops[0]
		paced := r.results[res.Name].paced
		if b.PerSec > 0 && !paced {
			out[i].RateVsBaseline = res.CallsPerSec / b.PerSec
		}
		for j, op := range res.Ops {
			if b.PerSec > 0 && len(res.Ops) == 1 && !paced {
				out[i].Ops[j].RateVsBaseline = op.PerSec / b.PerSec
			}
			if b.P99Ms > 0 {
				out[i].Ops[j].P99VsBaseline = op.P99Ms / b.P99Ms
			}
		}
		if base.ServerCPUPerCallUs > 0 {
			out[i].CPUVsBaseline = res.ServerCPUPerCallUs / base.ServerCPUPerCallUs
		}
	}
	return out
}

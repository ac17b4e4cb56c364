package loadtest_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/loadtest"
)

func TestRecorderCountsErrorsByCodeAndKeepsThemOutOfLatencies(t *testing.T) {
	r := loadtest.NewRecorder()
	for i := range 100 {
		r.Observe("PatientService/GetMedicationList", time.Duration(i+1)*time.Millisecond, nil)
	}
	r.Observe("PatientService/GetMedicationList", time.Hour, connect.NewError(connect.CodeUnavailable, errors.New("down")))
	r.Observe("PatientService/GetMedicationList", time.Hour, context.DeadlineExceeded)
	snap := r.Snapshot()
	if len(snap) != 1 {
		t.Fatalf("got %d ops, want 1", len(snap))
	}
	s := snap[0]
	if s.OK != 100 || s.Total() != 102 || s.ErrorCount() != 2 {
		t.Errorf("ok %d total %d errors %d, want 100 102 2", s.OK, s.Total(), s.ErrorCount())
	}
	if s.Errors["unavailable"] != 1 || s.Errors["deadline_exceeded"] != 1 {
		t.Errorf("errors by code %v", s.Errors)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p50", s.P50Ms, 50}, {"p99", s.P99Ms, 99}, {"max", s.MaxMs, 100}} {
		if c.got < c.want*0.99 || c.got > c.want*1.01 {
			t.Errorf("%s = %.3f ms, want %.0f ms (failed calls must not count)", c.name, c.got, c.want)
		}
	}
}

func TestShortName(t *testing.T) {
	if got := loadtest.ShortName("/mtm.v1.PatientService/GetMedicationList"); got != "PatientService/GetMedicationList" {
		t.Errorf("got %q", got)
	}
}

func TestRunnerBoundsPhasesAndComputesRatios(t *testing.T) {
	var cpu, client atomic.Int64
	r := &loadtest.Runner{ServerCPU: func() (time.Duration, error) { return time.Duration(cpu.Load()), nil },
		ClientCPU: func() (time.Duration, error) { return time.Duration(client.Load()), nil }}
	phase := func(name, baseline string, took time.Duration, maxIter int64) loadtest.Phase {
		return loadtest.Phase{Name: name, Baseline: baseline,
			Load: loadtest.Load{Concurrency: 4, Duration: 300 * time.Millisecond, MaxIterations: maxIter},
			Iterate: func(ctx context.Context, _ int) error {
				cpu.Add(int64(took))
				client.Add(int64(took / 4))
				loadtest.RecorderFrom(ctx).Observe(name, took, nil)
				return nil
			}}
	}
	ctx := context.Background()
	if err := r.Run(ctx, phase("base", "", time.Millisecond, 200)); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx, phase("work", "base", 2*time.Millisecond, 100)); err != nil {
		t.Fatal(err)
	}
	res := r.Results()
	if len(res) != 2 {
		t.Fatalf("got %d results", len(res))
	}
	if res[0].Iterations != 200 || res[1].Iterations != 100 {
		t.Errorf("iterations %d and %d, want the count bounds 200 and 100", res[0].Iterations, res[1].Iterations)
	}
	if got := res[1].CPUVsBaseline; got < 1.99 || got > 2.01 {
		t.Errorf("CPU per call vs baseline = %.3f, want 2", got)
	}
	if got := res[1].ClientCPUPerCallUs; got < 499 || got > 501 {
		t.Errorf("client CPU per call = %.1f µs, want 500 (its own clock, apart from the server's)", got)
	}
	if got := res[1].Ops[0].P99VsBaseline; got < 1.95 || got > 2.05 {
		t.Errorf("p99 vs baseline = %.3f, want 2", got)
	}
	if res[1].Ops[0].RateVsBaseline == 0 {
		t.Error("no rate ratio for a single-call phase")
	}

	var table strings.Builder
	rep := loadtest.Report{Runs: []loadtest.StoreRun{{Store: "bolt", Phases: res}}}
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "work") || !strings.Contains(table.String(), "2.00×") {
		t.Errorf("table lacks the phase or its ratio:\n%s", table.String())
	}
}

// A derived operation (a message's trip to its watcher) is reported but
// is no call: the phase's calls and server CPU per call count the RPCs.
func TestRunnerKeepsDerivedOpsOutOfCalls(t *testing.T) {
	var cpu atomic.Int64
	r := &loadtest.Runner{ServerCPU: func() (time.Duration, error) { return time.Duration(cpu.Load()), nil }}
	err := r.Run(context.Background(), loadtest.Phase{Name: "send", Derived: []string{"trip"},
		Load: loadtest.Load{Concurrency: 2, Duration: time.Minute, MaxIterations: 50},
		Iterate: func(ctx context.Context, _ int) error {
			cpu.Add(int64(time.Millisecond))
			rec := loadtest.RecorderFrom(ctx)
			rec.Observe("Send", time.Millisecond, nil)
			rec.Observe("trip", 2*time.Millisecond, nil)
			rec.Observe("trip", 2*time.Millisecond, nil)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	res := r.Results()[0]
	if res.Calls != 50 || len(res.Ops) != 2 {
		t.Fatalf("calls %d over %d ops, want the 50 sends and both ops reported", res.Calls, len(res.Ops))
	}
	if got := res.ServerCPUPerCallUs; got < 999 || got > 1001 {
		t.Errorf("server CPU per call %.1f µs, want 1000 (per send)", got)
	}
}

func TestRunnerStopsOnTime(t *testing.T) {
	r := &loadtest.Runner{}
	start := time.Now()
	err := r.Run(context.Background(), loadtest.Phase{Name: "sleep", Load: loadtest.Load{Concurrency: 2, Duration: 200 * time.Millisecond},
		Iterate: func(ctx context.Context, _ int) error { time.Sleep(10 * time.Millisecond); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 200ms phase ran %s", d)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true}, {"http://localhost:8080", true}, {"http://[::1]:8080", true},
		{"http://10.0.0.5:8080", false}, {"https://127.0.0.1:8080", false}, {"http://example.com", false},
	} {
		if err := loadtest.CheckLoopback(c.url); (err == nil) != c.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", c.url, err, c.ok)
		}
	}
}

// Every phase is compared with the floor (the bare handler) as well as
// with its baseline; the floor's CPU comes from its own clock (its own
// process), not the servers under test.
func TestRunnerComparesWithFloor(t *testing.T) {
	var serverCPU, bareCPU atomic.Int64
	r := &loadtest.Runner{Floor: "bare", ServerCPU: func() (time.Duration, error) { return time.Duration(serverCPU.Load()), nil }}
	phase := func(name string, took time.Duration, cpu *atomic.Int64) loadtest.Phase {
		return loadtest.Phase{Name: name, Load: loadtest.Load{Concurrency: 2, Duration: time.Minute, MaxIterations: 100},
			Iterate: func(ctx context.Context, _ int) error {
				cpu.Add(int64(took))
				loadtest.RecorderFrom(ctx).Observe(name, took, nil)
				return nil
			}}
	}
	floor := phase("bare", time.Millisecond, &bareCPU)
	floor.ServerCPU = func() (time.Duration, error) { return time.Duration(bareCPU.Load()), nil }
	for _, p := range []loadtest.Phase{floor, phase("pml", 4*time.Millisecond, &serverCPU)} {
		if err := r.Run(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	res := r.Results()
	if res[0].CPUVsFloor != 0 || res[0].Ops[0].P99VsFloor != 0 {
		t.Errorf("the floor is compared with itself: %+v", res[0])
	}
	if got := res[1].CPUVsFloor; got < 3.99 || got > 4.01 {
		t.Errorf("CPU per call vs floor = %.3f, want 4 (floor CPU read from its own clock)", got)
	}
	if got := res[1].Ops[0].P99VsFloor; got < 3.9 || got > 4.1 {
		t.Errorf("p99 vs floor = %.3f, want 4", got)
	}
	if res[1].RateVsFloor == 0 || res[1].Ops[0].RateVsFloor == 0 {
		t.Error("no rate ratio to the floor")
	}
}

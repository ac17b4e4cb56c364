package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// PhaseResult is what one phase measured, over all its runs.
type PhaseResult struct {
	Name     string  `json:"name"`
	Baseline string  `json:"baseline,omitempty"`
	Workers  int     `json:"workers"`
	Seconds  float64 `json:"seconds"`
	// Iterations are scenario iterations (an app open is one iteration of
	// several calls); Calls are RPCs and derived operations.
	Iterations       int64     `json:"iterations"`
	FailedIterations int64     `json:"failed_iterations"`
	Calls            int64     `json:"calls"`
	CallsPerSec      float64   `json:"calls_per_sec"`
	RateVsBaseline   float64   `json:"rate_vs_baseline,omitempty"`
	Ops              []OpStats `json:"ops"`
	// Server CPU time used during the phase (every server process under
	// test), in total and per call; CPUVsBaseline is the per-call figure
	// over the baseline's.
	ServerCPUSeconds   float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUPerCallUs float64 `json:"server_cpu_per_call_us,omitempty"`
	CPUVsBaseline      float64 `json:"cpu_vs_baseline,omitempty"`
	// ClientCPUPerCallUs is the load generator's own CPU time per call
	// (Runner.ClientCPU): client and servers share the machine's cores, so
	// a phase whose answers cost the client more is slower whatever the
	// server does.
	ClientCPUPerCallUs float64 `json:"client_cpu_per_call_us,omitempty"`
	// RateVsFloor and CPUVsFloor compare the phase (calls/s, server CPU
	// per call) with the bare connect-go handler measured in the same run.
	RateVsFloor float64 `json:"rate_vs_floor,omitempty"`
	CPUVsFloor  float64 `json:"cpu_vs_floor,omitempty"`
}

// Op returns the statistics of the named operation in the phase.
func (p PhaseResult) Op(name string) (OpStats, bool) {
	i := slices.IndexFunc(p.Ops, func(o OpStats) bool { return o.Name == name })
	if i < 0 {
		return OpStats{}, false
	}
	return p.Ops[i], true
}

// StoreRun is every phase run against one store configuration.
type StoreRun struct {
	Store  string        `json:"store"` // "bolt" or "redis"
	Phases []PhaseResult `json:"phases"`
	// Figures are single measurements outside the phase tables (reminder
	// drain time, seeding time), by name.
	Figures map[string]float64 `json:"figures,omitempty"`
}

// Target is one of the targets and where the run stands.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
	// Measured is false when the run could not measure the target (store
	// not run, feature not served); Note says why, or adds context.
	Measured bool   `json:"measured"`
	Note     string `json:"note,omitempty"`
}

// Report is the whole run.
type Report struct {
	Started  time.Time      `json:"started"`
	Command  string         `json:"command"`
	Settings map[string]any `json:"settings"`
	Runs     []StoreRun     `json:"runs"`
	Targets  []Target       `json:"targets"`
	// Smoke marks a short correctness run: its targets are printed as not
	// judged (Met stays as computed, for the record).
	Smoke bool `json:"smoke,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("loadtest.WriteJSON: %w", err)
	}
	return nil
}

// WriteTable writes the report as aligned text tables: one row per
// operation of each phase, then the figures and the targets.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, run := range r.Runs {
		fmt.Fprintf(tw, "\n== store: %s\n", run.Store)
		fmt.Fprintln(tw, "phase\top\tcalls\tcalls/s\tvs base\tvs bare\tp50 ms\tp95 ms\tp99 ms\tmax ms\tp99 vs base\tp99 vs bare\tcpu µs/call\tclient µs/call\terrors\t")
		for _, p := range run.Phases {
			for i, op := range p.Ops {
				name, cpu, client := "", "", ""
				if i == 0 {
					name = fmt.Sprintf("%s (%d workers, %.0fs)", p.Name, p.Workers, p.Seconds)
					if len(p.Ops) > 1 && (p.RateVsBaseline > 0 || p.RateVsFloor > 0) {
						name = fmt.Sprintf("%s (%d workers, %.0fs, all calls %s base, %s bare rate)", p.Name, p.Workers, p.Seconds, ratio(p.RateVsBaseline), ratio(p.RateVsFloor))
					}
					if p.ClientCPUPerCallUs > 0 {
						client = fmt.Sprintf("%.0f", p.ClientCPUPerCallUs)
					}
					if p.ServerCPUPerCallUs > 0 {
						cpu = fmt.Sprintf("%.0f", p.ServerCPUPerCallUs)
						var vs []string
						if p.CPUVsBaseline > 0 {
							vs = append(vs, fmt.Sprintf("%.2f× base", p.CPUVsBaseline))
						}
						if p.CPUVsFloor > 0 {
							vs = append(vs, fmt.Sprintf("%.2f× bare", p.CPUVsFloor))
						}
						if len(vs) > 0 {
							cpu += " (" + strings.Join(vs, ", ") + ")"
						}
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t\n",
					name, op.Name, op.Total(), op.PerSec, ratio(op.RateVsBaseline), ratio(op.RateVsFloor), op.P50Ms, op.P95Ms, op.P99Ms, op.MaxMs,
					ratio(op.P99VsBaseline), ratio(op.P99VsFloor), cpu, client, errorList(op.Errors))
			}
		}
		if len(run.Figures) > 0 {
			names := make([]string, 0, len(run.Figures))
			for k := range run.Figures {
				names = append(names, k)
			}
			slices.Sort(names)
			for _, k := range names {
				fmt.Fprintf(tw, "%s\t%.2f\t\n", k, run.Figures[k])
			}
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(tw, "\n== targets")
		fmt.Fprintln(tw, "target\twant\tgot\tmet\t")
		for _, t := range r.Targets {
			met := "yes"
			switch {
			case !t.Measured:
				met = "n/a"
			case r.Smoke:
				met = "not judged (smoke run: too short to judge a rate)"
			case !t.Met:
				met = "NO"
			}
			if t.Note != "" {
				met += ": " + t.Note
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f %s\t%s\t\n", t.Name, t.Want, t.Got, t.Unit, met)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadtest.WriteTable: %w", err)
	}
	return nil
}

func ratio(v float64) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", v)
}

func errorList(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s:%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

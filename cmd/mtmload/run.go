package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/suite"
)

// run parses args, runs the load test and writes the table to stdout,
// progress to stderr and, with --json, the report to a file.
// loadGeneratorGCPercent is mtmload's GOGC unless the environment sets one.
const loadGeneratorGCPercent = 400

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mtmload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := fs.Bool("smoke", false, "short run for CI (under a minute): 480 patients, 1s phases, 2,000 reminders, rotation under load on Redis (--reencrypt-during); explicit flags still win")
	stores := fs.String("stores", "bolt,redis", "store configurations to run, in order: bolt, redis")
	patients := fs.Int("patients", 10000, "patients seeded per store")
	perPharmacy := fs.Int("patients-per-pharmacy", 2500, "patients of each regular pharmacy (one more, a tenth of this size, holds the rest: the work lists are measured at both sizes)")
	protocol := fs.String("protocol", string(loadtest.ConnectH2C), "connect-h2c (binary protobuf over HTTP/2) or connect-json (JSON over HTTP/1.1)")
	concurrency := fs.Int("concurrency", 16, "workers per phase")
	devices := fs.Int("devices", 256, "simulated phones, each on its own loopback source address")
	duration := fs.Duration("phase", 10*time.Second, "duration of each phase run")
	rounds := fs.Int("rounds", 3, "times the baseline and the PML read alternate")
	active := fs.Int("active-patients", suite.DefaultActivePatients, "20-medicine patients the Empty and PML read phases call as, spread across the population (0: all); the default is what the default 10,000 patients hold, so that runs of different sizes read as many distinct patients")
	maxIter := fs.Int64("max-iterations", 0, "bound each phase run by count as well (0: time only)")
	reminders := fs.Int("reminders", 100000, "reminders due at once in the 8:00 burst (0 skips it)")
	msgRate := fs.Float64("messaging-rate", 500, "messages per second in the messaging phase, questions and replies (0 skips it); the send→watcher target is judged at 500 or more")
	msgThreads := fs.Int("messaging-threads", 100, "threads live at once in the messaging phase")
	bin := fs.String("mtmd-bin", "", "mtmd binary to run (default: build ./cmd/mtmd from the current directory)")
	workDir := fs.String("work-dir", "", "directory for data and server logs (default: a new temporary directory, removed unless --keep)")
	keep := fs.Bool("keep", false, "keep the work directory")
	logLevel := fs.String("server-log-level", "info", "mtmd --log-level during the run")
	serverURL := fs.String("url", "", "drive this running server (loopback, started with --bench-endpoints and --redis-url) instead of starting mtmd; needs --server-redis-url")
	serverRedis := fs.String("server-redis-url", "", "with --url: the server's Redis, which the run seeds with a fresh population")
	serverPID := fs.Int("server-pid", 0, "with --url: the server's process id, to report its CPU time per call")
	timeout := fs.Duration("timeout", time.Hour, "stop the whole run after this long")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file (- for stdout)")
	sealCost := fs.Bool("seal-cost", false, "run each store twice, the second time with mtmd --no-seal (PHI written unencrypted), and report the PML read and reminder burst rates sealed / unsealed")
	serverKEK := fs.String("server-kek-file", "", "with --url: the server's key-encryption key file (its --kek-file), to seed its sealed store")
	reencryptDuring := fs.Bool("reencrypt-during", false, "on Redis: run re-encryption passes with data-key rotation (mtmctl reencrypt --rotate) while the API phases run, then check that no acknowledged dose confirmation was lost and every seeded patient's record opens")
	cpuProfile := fs.String("cpu-profile", "", "write the load generator's own CPU profile for the whole run to this `file` (where the client's cost per call goes)")
	failOnErrors := fs.Bool("fail-on-errors", false, "exit non-zero when any measured call failed, a message never reached its watcher or, with --reencrypt-during, a re-encryption step failed or an acknowledged write was lost (for CI)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// The load generator shares the cores with the servers it measures, so
	// its own CPU is part of every rate; like mtmd (--gc-percent) it lets
	// its heap grow to 5× what is live rather than collect at Go's 2×.
	// The bare server, a child process, keeps Go's defaults. GOGC wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(loadGeneratorGCPercent)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		smokeDefaults := map[string]func(){
			"patients":          func() { *patients = 480 },
			"phase":             func() { *duration = time.Second },
			"rounds":            func() { *rounds = 1 },
			"reminders":         func() { *reminders = 2000 },
			"devices":           func() { *devices = 32 },
			"concurrency":       func() { *concurrency = 8 },
			"messaging-rate":    func() { *msgRate = 20 },
			"messaging-threads": func() { *msgThreads = 10 },
			"reencrypt-during":  func() { *reencryptDuring = true },
		}
		for name, apply := range smokeDefaults {
			if !set[name] {
				apply()
			}
		}
	}
	proto, err := loadtest.ParseProtocol(*protocol)
	if err != nil {
		return err
	}
	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "mtmload-")
		if err != nil {
			return err
		}
		dir = d
		if !*keep {
			defer os.RemoveAll(dir)
		}
	}
	module, err := os.Getwd()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to run the bare server: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cfg := suite.Config{
		ServerURL: *serverURL, ServerRedisURL: *serverRedis, ServerPID: *serverPID,
		Stores: strings.Split(*stores, ","), Patients: *patients, PatientsPerPharmacy: *perPharmacy, Protocol: proto,
		Concurrency: *concurrency, Devices: *devices, PhaseDuration: *duration, Rounds: *rounds,
		ActivePatients: *active, MaxIterations: *maxIter, MTMDBinary: *bin, ModuleDir: module, WorkDir: dir,
		ServerLogLevel: *logLevel, Reminders: *reminders, MessagingRate: *msgRate, MessagingThreads: *msgThreads,
		BareBinary: self, Smoke: *smoke, Progress: stderr, SealCost: *sealCost, ServerKEKFile: *serverKEK,
		ReencryptDuring: *reencryptDuring,
	}
	rep, err := suite.Run(ctx, cfg)
	rep.Command = "mtmload " + strings.Join(args, " ")
	if err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	switch *jsonOut {
	case "":
	case "-":
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	default:
		if err := writeJSONFile(rep, *jsonOut); err != nil {
			return err
		}
	}
	if *failOnErrors {
		return failures(rep)
	}
	return nil
}

func writeJSONFile(rep loadtest.Report, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// failures lists the failed calls and undelivered messages of a report.
func failures(rep loadtest.Report) error {
	var problems []string
	for _, run := range rep.Runs {
		for _, p := range run.Phases {
			for _, op := range p.Ops {
				if n := op.ErrorCount(); n > 0 {
					problems = append(problems, fmt.Sprintf("%s/%s/%s: %d failed calls %v", run.Store, p.Name, op.Name, n, op.Errors))
				}
			}
		}
		if err := suite.BurstIncomplete(run); err != nil {
			problems = append(problems, fmt.Sprintf("%s: reminder burst: %v", run.Store, err))
		}
		if err := suite.RotationFailed(run); err != nil {
			problems = append(problems, fmt.Sprintf("%s: rotation under load: %v", run.Store, err))
		}
		if n := run.Figures[suite.FigureUndelivered]; n > 0 {
			problems = append(problems, fmt.Sprintf("%s: %.0f messages never reached their watcher", run.Store, n))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("load test saw failures:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// Package suite runs the whole load test: for each store configuration it
// starts a private redis-server when needed, seeds the population through
// the store contract, starts mtmd (two instances on Redis) with the
// baseline RPC enabled, runs the scenarios as measured phases and returns
// the Report with the targets evaluated. cmd/mtmload is its
// command line.
package suite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/procs"
	"github.com/mtmapp/mtm/loadtest/scenario"
	"github.com/mtmapp/mtm/loadtest/seed"
)

// DefaultActivePatients is Config.ActivePatients of mtmload: the
// 20-medicine patients of its default 10,000-patient population.
const DefaultActivePatients = 10_000 / 16

// Config is one load-test run.
type Config struct {
	// Stores to run on, in order: "bolt" and/or "redis".
	Stores []string
	// Patients seeded per store.
	Patients int
	// PatientsPerPharmacy is the size of the regular pharmacies (0: the
	// seed's default, 2,500); one more pharmacy holds SmallPharmacy of
	// the patients, for the work lists at two sizes.
	PatientsPerPharmacy int
	// Protocol between the load generator and mtmd.
	Protocol loadtest.Protocol
	// Concurrency is the number of workers of each phase.
	Concurrency int
	// Devices is the number of simulated phones (HTTP clients, each on its
	// own loopback source address).
	Devices int
	// PhaseDuration bounds each run of a phase; Rounds is how many times
	// the baseline and the PML read alternate (their results accumulate).
	PhaseDuration time.Duration
	Rounds        int
	// ActivePatients is how many of the 20-medicine patients the floor,
	// Empty and PML read phases call as, spread evenly across the
	// population (0: all of them). DefaultActivePatients makes runs of
	// different sizes read as many distinct patients, so that they compare
	// the stores at those sizes rather than how much of the population
	// fits mtmd's caches (its --record-cache, --key-cache, --token-cache).
	ActivePatients int
	// MaxIterations bounds each run of a phase by count (0: time only).
	MaxIterations int64
	// MTMDBinary is the server to run; "" builds ./cmd/mtmd of ModuleDir.
	MTMDBinary string
	ModuleDir  string
	// WorkDir holds the data dirs and logs; it is kept for inspection.
	WorkDir string
	// ServerLogLevel is mtmd's --log-level (default info, as in production).
	ServerLogLevel string
	// Reminders due at once in the 8:00 burst (0: skip the burst).
	Reminders int
	// MessagingRate is messages per second (questions and replies) in the
	// messaging phase;
	// MessagingThreads how many threads are live at once (0: skip).
	MessagingRate    float64
	MessagingThreads int
	// ServerURL, when set, drives a running server instead of starting
	// one: it must be on loopback, serve --bench-endpoints and use the
	// Redis at ServerRedisURL, which the run seeds (with a fresh id tag).
	// ServerPID, when set, is the server's process id for its CPU time.
	ServerURL      string
	ServerRedisURL string
	ServerPID      int
	// BareBinary, when set, is a binary that serves the bare connect-go
	// handler when run with procs.BareFlag (mtmload itself): every phase
	// is compared with it, measured in the same run.
	BareBinary string
	// Smoke marks a short correctness run: targets are not judged.
	Smoke bool
	// SealCost runs each store a second time with PHI written unsealed
	// (mtmd --no-seal) and adds the sealed / unsealed rate ratios
	// (FigureSealPML, FigureSealBurst) to the sealed run.
	SealCost bool
	// ServerKEKFile is the key-encryption key file of the server given by
	// ServerURL, for seeding its store.
	ServerKEKFile string
	// ReencryptDuring runs, on Redis, re-encryption passes with data-key
	// rotation (mtmctl reencrypt --rotate) in this process on the
	// deployment's store while the API phases run, then checks that every
	// acknowledged dose confirmation is still there and every seeded
	// patient's record opens (the Figure* of rotation.go; RotationFailed).
	ReencryptDuring bool
	// noSeal: this run writes PHI unsealed (the second run of SealCost).
	noSeal bool
	// Progress receives the progress lines and stage notes.
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ServerURL != "" {
		if err := loadtest.CheckLoopback(c.ServerURL); err != nil {
			errs = append(errs, err)
		}
		if err := checkLoopbackRedis(c.ServerRedisURL); err != nil {
			errs = append(errs, err)
		}
	} else {
		if len(c.Stores) == 0 {
			errs = append(errs, errors.New("no store to run on"))
		}
		for _, s := range c.Stores {
			if s != "bolt" && s != "redis" {
				errs = append(errs, fmt.Errorf("store %q: want bolt or redis", s))
			}
		}
	}
	if c.Patients < 16 {
		errs = append(errs, fmt.Errorf("patients %d: want at least 16 (a sixteenth have 20 medicines)", c.Patients))
	}
	if _, err := loadtest.ParseProtocol(string(c.Protocol)); err != nil {
		errs = append(errs, err)
	}
	if c.ActivePatients < 0 {
		errs = append(errs, fmt.Errorf("active patients %d: want 0 (all) or more", c.ActivePatients))
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("concurrency %d: want 1–1024", c.Concurrency))
	}
	if c.Devices < 1 || c.Devices > 60000 {
		errs = append(errs, fmt.Errorf("devices %d: want 1–60000", c.Devices))
	}
	if c.PhaseDuration < 100*time.Millisecond || c.PhaseDuration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("phase duration %s: want 100ms–10m", c.PhaseDuration))
	}
	if c.Rounds < 1 || c.Rounds > 20 {
		errs = append(errs, fmt.Errorf("rounds %d: want 1–20", c.Rounds))
	}
	if c.WorkDir == "" {
		errs = append(errs, errors.New("missing work dir"))
	}
	if c.MTMDBinary == "" && c.ModuleDir == "" && c.ServerURL == "" {
		errs = append(errs, errors.New("need the mtmd binary or the module dir to build it"))
	}
	return errors.Join(errs...)
}

func (c Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format+"\n", args...)
	}
}

// Run runs the load test and returns its report. It fails when a server
// cannot be started or the population cannot be seeded; failing calls
// during the phases are counted in the report, not returned.
func Run(ctx context.Context, c Config) (loadtest.Report, error) {
	if err := c.Validate(); err != nil {
		return loadtest.Report{}, fmt.Errorf("suite.Run: %w", err)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	rep := loadtest.Report{Started: c.Now(), Settings: map[string]any{
		"stores": c.Stores, "patients": c.Patients, "protocol": c.Protocol, "concurrency": c.Concurrency,
		"devices": c.Devices, "phase_seconds": c.PhaseDuration.Seconds(), "rounds": c.Rounds,
		"reminders": c.Reminders, "messaging_rate": c.MessagingRate, "messaging_threads": c.MessagingThreads, "active_patients": c.ActivePatients,
		"server_log_level": c.ServerLogLevel, "reencrypt_during": c.ReencryptDuring,
	}, Smoke: c.Smoke}
	if c.ServerURL != "" {
		c.Stores = []string{StoreExternal}
	}
	bin := c.MTMDBinary
	if bin == "" && c.ServerURL == "" {
		c.logf("building mtmd…")
		b, err := procs.BuildMTMD(ctx, c.ModuleDir, c.WorkDir)
		if err != nil {
			return rep, err
		}
		bin = b
	}
	for _, st := range c.Stores {
		run, err := runStore(ctx, c, bin, st)
		if err != nil {
			return rep, fmt.Errorf("suite.Run %s: %w", st, err)
		}
		if c.SealCost && st != StoreExternal {
			unsealed := c
			unsealed.noSeal, unsealed.WorkDir = true, filepath.Join(c.WorkDir, "unsealed")
			base, err := runStore(ctx, unsealed, bin, st)
			if err != nil {
				return rep, fmt.Errorf("suite.Run %s unsealed: %w", st, err)
			}
			addSealCost(&run, base)
			base.Store = st + UnsealedSuffix
			rep.Runs = append(rep.Runs, run, base)
			continue
		}
		rep.Runs = append(rep.Runs, run)
	}
	rep.Targets = Targets(rep)
	return rep, nil
}

// deployment is the servers of one store configuration.
type deployment struct {
	redis     *procs.Redis
	instances []*procs.MTMD
}

func (d *deployment) stop() {
	for _, m := range d.instances {
		_ = m.Stop(20 * time.Second)
	}
	if d.redis != nil {
		_ = d.redis.Stop(10 * time.Second)
	}
}

// cpu reads the CPU time of every server process.
func (d *deployment) cpu() (time.Duration, error) {
	var total time.Duration
	ps := []*procs.Process{}
	for _, m := range d.instances {
		ps = append(ps, m.Process)
	}
	if d.redis != nil {
		ps = append(ps, d.redis.Process)
	}
	for _, p := range ps {
		t, err := p.CPUTime()
		if err != nil {
			return 0, err
		}
		total += t
	}
	return total, nil
}

func runStore(ctx context.Context, c Config, bin, storeName string) (loadtest.StoreRun, error) {
	run := loadtest.StoreRun{Store: storeName, Figures: map[string]float64{}}
	dir := filepath.Join(c.WorkDir, storeName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return run, err
	}
	dep := &deployment{}
	defer dep.stop()
	redisURL, tag := "", ""
	if storeName == StoreExternal {
		redisURL, tag = c.ServerRedisURL, strconv.FormatInt(c.Now().Unix(), 36)
	}
	if storeName == "redis" {
		rdir := filepath.Join(dir, "redis")
		if err := os.MkdirAll(rdir, 0o700); err != nil {
			return run, err
		}
		r, err := procs.StartRedis(ctx, rdir)
		if err != nil {
			return run, err
		}
		dep.redis, redisURL = r, r.URL()
	}

	// Seed through the store contract, then hand the store to mtmd.
	dataA := filepath.Join(dir, "mtmd-a")
	// One key-encryption key for the seeding, the burst and every
	// instance (PHI at rest).
	kek := filepath.Join(dir, "phi-kek.json")
	if storeName == StoreExternal {
		kek = c.ServerKEKFile
	}
	st, err := openForSeeding(ctx, dataA, redisURL, kek, c.noSeal)
	if err != nil {
		return run, err
	}
	var mem0 int64
	if dep.redis != nil {
		if mem0, err = dep.redis.UsedMemory(ctx); err != nil {
			st.Close()
			return run, err
		}
	}
	c.logf("%s: seeding %d patients…", storeName, c.Patients)
	t0 := time.Now()
	pop, err := seed.Seed(ctx, st, seed.Options{Patients: c.Patients, PatientsPerPharmacy: c.PatientsPerPharmacy,
		SmallPharmacy: SmallPharmacy(c.Patients, c.PatientsPerPharmacy), Now: c.Now(), Tag: tag, Progress: func(n int64) {
			if c.Progress != nil && (n%500 == 0 || n == int64(c.Patients)) {
				fmt.Fprintf(c.Progress, "\r%-8s seeded %d/%d patients", storeName, n, c.Patients)
			}
		}})
	if c.Progress != nil {
		fmt.Fprintln(c.Progress)
	}
	if err != nil {
		st.Close()
		return run, err
	}
	run.Figures["seed seconds"] = time.Since(t0).Seconds()
	if dep.redis != nil {
		t1 := time.Now()
		if err := dep.redis.Settle(ctx); err != nil {
			st.Close()
			return run, err
		}
		if d := time.Since(t1); d > time.Second {
			c.logf("%s: waited %s for Redis to finish rewriting its append-only file", storeName, d.Round(time.Second))
		}
	}
	// The 8:00 reminder burst goes out through the mtmd instances' own
	// dispatchers to a fake FCM in this process. On bbolt mtmd holds the
	// file, so its reminders are written now, due once mtmd is up; on
	// Redis they are written while both instances run.
	var fcm *scenario.FCM
	var burst *burstRun
	if c.Reminders > 0 && storeName != StoreExternal {
		if fcm, err = scenario.StartFCM(ctx); err != nil {
			st.Close()
			return run, err
		}
		defer fcm.Close()
		burst = &burstRun{fcm: fcm, pop: pop, n: c.Reminders, now: c.Now(), workers: min(st.ReminderShards(), 16)}
		if err := burst.raw(ctx, c, storeName); err != nil {
			st.Close()
			return run, err
		}
		if storeName == "bolt" {
			if err := burst.schedule(ctx, c, storeName, st, boltStartLead); err != nil {
				st.Close()
				return run, err
			}
		}
	} else if c.Reminders > 0 {
		c.logf("%s: no reminder burst against a server given by URL (its pushes do not reach this run's fake FCM)", storeName)
	}
	if err := st.Close(); err != nil {
		return run, err
	}
	if dep.redis != nil {
		mem1, err := dep.redis.UsedMemory(ctx)
		if err != nil {
			return run, err
		}
		run.Figures[FigureRedisBytesPerPatient] = float64(mem1-mem0) / float64(len(pop.Patients))
	}
	run.Figures["seeded patients"] = float64(len(pop.Patients))

	// Instances of one deployment share the signing keys.
	keys := filepath.Join(dir, "keys")
	instances := 1
	if storeName == "redis" {
		instances = 2
	}
	var pools []*loadtest.Devices
	cpu := dep.cpu
	if storeName == StoreExternal {
		instances = 0
		d, err := loadtest.NewDevices(c.ServerURL, c.Protocol, c.Devices)
		if err != nil {
			return run, err
		}
		defer d.Close()
		pools = append(pools, d)
		cpu = nil
		if c.ServerPID > 0 {
			cpu = func() (time.Duration, error) { return procs.CPUTimeOf(c.ServerPID) }
		}
	}
	for k := range instances {
		m, err := procs.StartMTMD(ctx, procs.MTMDOptions{
			Binary: bin, Name: fmt.Sprintf("mtmd-%c", 'a'+k), DataDir: filepath.Join(dir, fmt.Sprintf("mtmd-%c", 'a'+k)),
			KeyDir: keys, RedisURL: redisURL, LogLevel: c.ServerLogLevel, Extra: append(pushFlags(fcm), sealFlags(kek, c.noSeal)...),
		})
		if err != nil {
			return run, err
		}
		dep.instances = append(dep.instances, m)
		d, err := loadtest.NewDevices(m.URL, c.Protocol, c.Devices)
		if err != nil {
			return run, err
		}
		defer d.Close()
		pools = append(pools, d)
	}
	if burst != nil {
		if storeName != "bolt" {
			st, err := openForSeeding(ctx, dataA, redisURL, kek, c.noSeal)
			if err != nil {
				return run, err
			}
			err = burst.schedule(ctx, c, storeName, st, 0)
			st.Close()
			if err != nil {
				return run, err
			}
		}
		if err := burst.await(ctx, c, storeName, dep, &run); err != nil {
			return run, err
		}
		fcm.StopKeeping()
	}
	env, err := scenario.NewEnv(pop, pools...)
	if err != nil {
		return run, err
	}

	pml := scenario.Spread(env.PatientsWithMedicines(seed.MaxMedicines), c.ActivePatients)
	signedIn := append([]int(nil), pml...)
	for i := range min(len(pop.Patients), 2000) {
		if pop.Patients[i].Medicines != seed.MaxMedicines {
			signedIn = append(signedIn, i)
		}
	}
	caregivers := 0
	if c.MessagingRate > 0 {
		caregivers = min(c.MessagingThreads, len(pop.Caregivers))
	}
	c.logf("%s: signing in %d patients (%d with 20 medicines), %d pharmacists, %d caregivers…", storeName, len(signedIn), len(pml), len(pop.Pharmacists), caregivers)
	if err := env.SignIn(ctx, signedIn, caregivers, c.Concurrency); err != nil {
		return run, err
	}

	r := &loadtest.Runner{Label: storeName, ServerCPU: cpu, ClientCPU: procs.SelfCPUTime, Progress: c.Progress, Now: c.Now}
	load := loadtest.Load{Concurrency: c.Concurrency, Duration: c.PhaseDuration, MaxIterations: c.MaxIterations}
	// The floor: a bare connect-go handler in its own process, driven by
	// the same devices, tokens, protocol and concurrency.
	// It also replays mtmd's answers to the PML read and the app open
	// (the answer floors, scenario.RecordAnswers).
	var floor, floorPML, floorOpen func(loadtest.Load) loadtest.Phase
	if c.BareBinary != "" {
		median := env.MedianPatient()
		answers, err := env.RecordAnswers(ctx, pml[0], median)
		if err != nil {
			return run, err
		}
		b, err := procs.StartBare(ctx, c.BareBinary, filepath.Join(dir, "bare"), answers)
		if err != nil {
			return run, err
		}
		defer b.Stop(10 * time.Second)
		d, err := loadtest.NewDevices(b.URL, c.Protocol, c.Devices)
		if err != nil {
			return run, err
		}
		defer d.Close()
		bare := scenario.NewClients(d)
		onBare := func(p loadtest.Phase) loadtest.Phase {
			p.ServerCPU = b.CPUTime
			return p
		}
		floor = func(l loadtest.Load) loadtest.Phase { return onBare(env.Floor(l, pml, bare)) }
		floorPML = func(l loadtest.Load) loadtest.Phase { return onBare(env.FloorPML(l, pml, bare)) }
		floorOpen = func(l loadtest.Load) loadtest.Phase { return onBare(env.FloorAppOpen(l, bare, median)) }
		r.Floor = scenario.PhaseFloor
	}
	// Warm up (not reported): connections, server caches, heap size.
	warm := &loadtest.Runner{Label: storeName, Now: c.Now}
	warmLoad := loadtest.Load{Concurrency: c.Concurrency, Duration: min(c.PhaseDuration, 2*time.Second)}
	if floor != nil {
		_ = warm.Run(ctx, floor(warmLoad))
		_ = warm.Run(ctx, floorPML(warmLoad))
	}
	_ = warm.Run(ctx, env.Baseline(warmLoad, pml))
	_ = warm.Run(ctx, env.ReadPML(warmLoad, pml))

	// Rotation under load: from here to the end of the phases.
	var rot *rotator
	var doses *scenario.DoseLog
	var rotStore store.Store
	if c.ReencryptDuring && redisURL != "" && !c.noSeal {
		if rotStore, err = openForSeeding(ctx, dataA, redisURL, kek, false); err != nil {
			return run, err
		}
		defer rotStore.Close()
		c.logf("%s: re-encryption passes with data-key rotation (%d patients a step) run during the phases…", storeName, rotationStep)
		rot, doses = startRotation(ctx, rotStore, rotationStep), &scenario.DoseLog{}
	} else if c.ReencryptDuring && !c.noSeal {
		c.logf("%s: no rotation under load on bbolt (mtmd holds the file; mtmd --reencrypt runs with the server stopped)", storeName)
	}
	for range c.Rounds {
		if floor != nil {
			if err := r.Run(ctx, floor(load)); err != nil {
				return run, err
			}
		}
		if err := r.Run(ctx, env.Baseline(load, pml)); err != nil {
			return run, err
		}
		if err := r.Run(ctx, env.ReadPML(load, pml)); err != nil {
			return run, err
		}
		if floorPML != nil {
			if err := r.Run(ctx, floorPML(load)); err != nil {
				return run, err
			}
		}
	}
	if err := env.RequireServed(ctx); err != nil {
		return run, err
	}
	if floorOpen != nil {
		if err := r.Run(ctx, floorOpen(load)); err != nil {
			return run, err
		}
	}
	if err := r.Run(ctx, env.AppOpen(load)); err != nil {
		return run, err
	}
	if err := runQuietOpen(ctx, c, env, r, load, signedIn, &run); err != nil {
		return run, err
	}
	if err := r.Run(ctx, env.ConfirmDosesLogged(load, signedIn, c.Now(), doses)); err != nil {
		return run, err
	}
	if err := runWorklists(ctx, env, r, load, c.Rounds, pop, &run); err != nil {
		return run, err
	}
	if c.MessagingRate > 0 && c.MessagingThreads > 0 {
		if err := runConversation(ctx, c, env, r, load, &run); err != nil {
			return run, err
		}
	}
	if rot != nil {
		if err := rot.stop(run.Figures); err != nil {
			c.logf("%s: rotation under load: %v", storeName, err)
		}
		c.logf("%s: rotation under load: %.0f passes complete; reading back %d acknowledged dose confirmations and %d patients…",
			storeName, run.Figures[FigureRotationPasses], len(doses.Acks()), len(pop.Patients))
		if err := checkNoLostWrites(ctx, rotStore, doses.Acks(), pop, run.Figures); err != nil {
			c.logf("%s: rotation under load: %v", storeName, err)
		}
	}
	run.Phases = r.Results()
	return run, nil
}

// SmallPharmacy is how many of the patients go to the small pharmacy: a
// tenth of a regular pharmacy, at most an eighth of the patients.
func SmallPharmacy(patients, perPharmacy int) int {
	if perPharmacy <= 0 {
		perPharmacy = 2500
	}
	return min(perPharmacy/10, patients/8)
}

// runWorklists has the pharmacists of the first (largest) and of the
// small pharmacy open their work lists, alternating `rounds` times (their
// results accumulate, so both sizes see the machine's ups and downs), and
// adds how full the pages were.
func runWorklists(ctx context.Context, env *scenario.Env, r *loadtest.Runner, load loadtest.Load, rounds int, pop seed.Population, run *loadtest.StoreRun) error {
	sizes := map[string]int{}
	for _, p := range pop.Patients {
		sizes[p.PharmacyID]++
	}
	pharmacies := []string{pop.Pharmacies[0], pop.Pharmacies[len(pop.Pharmacies)-1]}
	counts := make([]scenario.WorklistCounts, len(pharmacies))
	names := make([]string, len(pharmacies))
	for range max(rounds, 1) {
		for k, ph := range pharmacies {
			phase, err := env.Worklists(load, ph, sizes[ph], &counts[k])
			if err != nil {
				return err
			}
			names[k] = phase.Name
			if err := r.Run(ctx, phase); err != nil {
				return err
			}
		}
	}
	for k := range pharmacies {
		if n := counts[k].Calls.Load(); n > 0 {
			run.Figures[fmt.Sprintf("%s: entries per page (of %d)", names[k], scenario.WorklistPage)] = float64(counts[k].Entries.Load()) / float64(n)
		}
	}
	return nil
}

// runConversation runs the questions-and-replies phase and adds its
// delivery figures to run.
func runConversation(ctx context.Context, c Config, env *scenario.Env, r *loadtest.Runner, load loadtest.Load, run *loadtest.StoreRun) error {
	conv, err := env.Conversation(ctx, load, c.MessagingThreads, c.MessagingRate)
	if err != nil {
		return err
	}
	defer conv.Close()
	if err := r.Run(ctx, conv.Phase); err != nil {
		return err
	}
	// Give the last messages a moment to reach their watchers.
	deadline := time.Now().Add(2 * time.Second)
	for conv.Undelivered() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	run.Figures[FigureUndelivered] = float64(conv.Undelivered())
	run.Figures["watch streams ended with an error"] = float64(conv.StreamErrors.Load())
	run.Figures["messages that reached their watcher before SendMessage answered"] = float64(conv.BeforeAnswer.Load())
	return nil
}

// StoreExternal names the run against a server given by URL.
const StoreExternal = "external"

// checkLoopbackRedis accepts redis:// URLs on a loopback host.
func checkLoopbackRedis(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" {
		return fmt.Errorf("server Redis URL %q: want redis://host:port on loopback (the store the server uses, for seeding)", raw)
	}
	if h := u.Hostname(); h != "localhost" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("server Redis URL %q: the load test only touches loopback addresses", raw)
		}
	}
	return nil
}

// openForSeeding opens the store mtmd will use, in this process: the bolt
// file without fsync (seeding is not measured), or the Redis server.
func openForSeeding(ctx context.Context, dataDir, redisURL, kekFile string, noSeal bool) (store.Store, error) {
	logger := slog.New(slog.DiscardHandler)
	if redisURL != "" {
		st, _, err := backends.Open(ctx, backends.Settings{RedisURL: redisURL, KEKFile: kekFile, NoSeal: noSeal, Logger: logger})
		return st, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	kek, err := backends.LoadKEK(backends.Settings{KEKFile: kekFile, Logger: logger})
	if err != nil {
		return nil, err
	}
	return bolt.Open(bootstrap.BoltPath(dataDir), bolt.Options{Logger: logger, NoSync: true, KEK: kek, NoSeal: noSeal})
}

// pushFlags are the mtmd flags that send pushes to the run's fake FCM
// (none without one: pushes are then log lines).
func pushFlags(fcm *scenario.FCM) []string {
	if fcm == nil {
		return nil
	}
	return fcm.MTMDFlags()
}

// boltStartLead is the time allowed for starting mtmd on bbolt after its
// burst is written (on Redis the instances are already up).
const boltStartLead = time.Second

// burstRun is the 8:00 reminder burst of one store run: the raw SDK rate,
// then the reminders written through the store, due a moment later, then
// what the mtmd instances' dispatchers pushed to the fake FCM.
type burstRun struct {
	fcm     *scenario.FCM
	pop     seed.Population
	n       int
	now     time.Time
	workers int
	rawRate float64
	plan    scenario.BurstPlan
	cpu0    time.Duration
}

// raw measures the raw SDK rate for as many messages as the burst has
// reminders.
func (b *burstRun) raw(ctx context.Context, c Config, storeName string) error {
	groups, err := scenario.BurstReminders(b.pop, b.n, b.now, b.now)
	if err != nil {
		return err
	}
	due := 0
	for _, g := range groups {
		due += len(g)
	}
	c.logf("%s: raw Firebase SDK SendEach of %d messages (%d senders)…", storeName, due, b.workers)
	b.rawRate, err = b.fcm.RawSDKRate(ctx, due, b.workers)
	return err
}

// schedule writes the burst's reminders due half a second after they are
// expected to be written (at an assumed 25,000 reminders/s; a two-core
// machine shared with other work wrote 47,000–58,000/s) plus lead.
func (b *burstRun) schedule(ctx context.Context, c Config, storeName string, st store.Store, lead time.Duration) error {
	due := time.Now().Add(500*time.Millisecond + time.Duration(b.n)*40*time.Microsecond + lead)
	c.logf("%s: 8:00 reminder burst: writing up to %d reminders due at %s…", storeName, b.n, due.Format("15:04:05.000"))
	plan, err := scenario.ScheduleBurst(ctx, st, b.pop, b.n, b.now, due)
	if err != nil {
		return err
	}
	b.plan = plan
	return nil
}

// await waits for the burst's pushes and adds its figures to run.
func (b *burstRun) await(ctx context.Context, c Config, storeName string, dep *deployment, run *loadtest.StoreRun) error {
	// The reminders written and mtmd up this long before they were due;
	// on a machine so busy that either came late, the burst is still
	// checked (every reminder pushed once) but its timing is not judged.
	run.Figures[FigureBurstReadyBeforeDue] = time.Until(b.plan.Due).Seconds()
	c.logf("%s: waiting for %d reminders due at %s to be pushed by %d mtmd instance(s)…", storeName, b.plan.Reminders, b.plan.Due.Format("15:04:05"), len(dep.instances))
	time.Sleep(time.Until(b.plan.Due))
	cpu0, err := dep.cpu()
	if err != nil {
		return err
	}
	res := b.fcm.AwaitBurst(ctx, b.plan, 30*time.Second)
	cpu1, err := dep.cpu()
	if err != nil {
		return err
	}
	// The raw rate again, right after: on a shared machine the rate of
	// either moment alone swings with what else runs; their mean brackets
	// the burst.
	before := b.rawRate
	after, err := b.fcm.RawSDKRate(ctx, res.Reminders, b.workers)
	if err != nil {
		return err
	}
	b.rawRate = (before + after) / 2
	run.Figures["reminder burst: raw SDK messages/s before the burst"] = before
	run.Figures["reminder burst: raw SDK messages/s after the burst"] = after
	if b.rawRate > 0 {
		res.Ratio = res.DrainRate / b.rawRate
	}
	run.Figures[FigureBurstDue] = float64(res.Reminders)
	run.Figures[FigureBurstPushes] = float64(res.Pushes)
	run.Figures[FigureBurstDistinct] = float64(res.Distinct)
	run.Figures["reminder burst: writing the reminders, seconds"] = b.plan.ScheduleSeconds
	run.Figures[FigureBurstFirstMs] = res.FirstMs
	run.Figures["reminder burst: lateness p50 (ms after due)"] = res.P50Ms
	run.Figures[FigureBurstP99Ms] = res.P99Ms
	run.Figures["reminder burst: last push (ms after due)"] = res.LastMs
	run.Figures["reminder burst: drained reminders/s (due → last push)"] = res.DrainRate
	run.Figures["reminder burst: raw SDK messages/s (mean of before and after)"] = b.rawRate
	run.Figures["reminder burst: server CPU µs/reminder (mtmd + Redis)"] = (cpu1 - cpu0).Seconds() * 1e6 / float64(max(res.Reminders, 1))
	run.Figures[FigureBurstVsSDK] = res.Ratio
	return nil
}

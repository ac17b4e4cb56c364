package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/console"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/store/recordcache"
	"github.com/mtmapp/mtm/backend/store/seal"
	"github.com/mtmapp/mtm/backend/telemetry/tracing"
)

// Config is everything mtmd reads at start. Each field has a flag and an
// MTM_* environment variable (the flag name upper-cased, dashes as
// underscores, e.g. --admin-addr and MTM_ADMIN_ADDR). A flag wins over the
// environment, the environment over the default.
type Config struct {
	Addr                string        // API listen address (Connect, gRPC, gRPC-Web; HTTP/1.1 and h2c)
	AdminAddr           string        // admin listen address (/metrics, /healthz); "" disables
	AdminPprof          bool          // also serve Go's profiles (/debug/pprof/) on the admin address
	GCPercent           int           // the garbage collector's target (Go's GOGC); GOGC in the environment wins
	Caches              cacheSizes    // in-memory caches of records, data keys and verified tokens
	DataDir             string        // embedded store and default key directory
	RedisURL            string        // use Redis instead of the embedded store
	KEKURI              string        // key-encryption key in a KMS (Tink URI); else KEKFile
	KEKFile             string        // local key-encryption key file; default <data-dir>/phi-kek.json
	NoSeal              bool          // write values unsealed (load test baseline; needs BenchEndpoints)
	Reencrypt           reencryptFlag // run the re-encryption pass in the background (reencrypt.go)
	RedisRequireDurable bool          // refuse to start on a Redis that can lose acknowledged writes
	RedisReplicaAcks    int           // replicas that must confirm a record write (WAIT) before it is acknowledged
	RedisReplicaTimeout time.Duration // how long a write waits for them before failing as unavailable
	Issuer              string        // "iss" of access tokens
	Audience            string        // "aud" of access tokens
	AccessTTL           time.Duration // access token lifetime
	SigningKeys         string        // where the signing keys live: store or dir (bootstrap.DefaultKeySource)
	SigningKeyDir       string        // signing keys with --signing-keys dir; default <data-dir>/keys
	SigningKeyWrapFile  string        // key sealing the signing keys with --signing-keys store; default <data-dir>/signing-key-wrap.key
	KeyReload           time.Duration // how often the signing keys are re-read (rotations by mtmctl keys)
	MaxRequestBytes     int64         // largest request message accepted
	MaxRPCTimeout       time.Duration // deadline clamp for unary RPCs
	MaxStreams          int           // watch streams open at once on this server
	MaxPrincipalStreams int           // watch streams open at once for one principal
	LogFormat           string        // text or json
	LogLevel            string        // debug, info, warn, error
	Demo                bool          // seed demo data and print how to try it
	ShutdownTimeout     time.Duration // how long in-flight calls get to finish
	AuditSink           string        // where the audit archive goes: file or stdout
	AuditDir            string        // directory of the audit archive files; default <data-dir>/audit
	AuditWindow         int           // access events kept per patient in the store
	BenchEndpoints      bool          // also serve mtm.v1.BenchService (the load test's baseline)
	Reminders           reminderFlags // push sender and dispatcher (reminders.go)
	Edge                edgeFlags     // CORS and TLS on the API port (edge.go)
	TrustedProxies      string        // comma-separated CIDRs whose forwarding header names the client
	ForwardedHeader     string        // X-Forwarded-For or Forwarded
	RefreshGrace        time.Duration // how long a repeat of a spent refresh token gets the same successor
	Health              healthFlags   // readiness and shutdown grace (health.go)
	// tracing is what tracing.Check found wrong in the OTEL_* variables
	// (traces are configured by the OpenTelemetry variables, not flags).
	tracing            error
	Console            bool          // serve the pharmacist console on /console/
	ConsoleIdleTimeout time.Duration // console sessions end after this long without a request
}

// Defaults.
const (
	defaultAddr            = "127.0.0.1:8080"
	defaultAdminAddr       = "127.0.0.1:9090"
	defaultDataDir         = "./mtm-data"
	defaultIssuer          = "urn:mtm:mtmd"
	defaultAudience        = "urn:mtm:api"
	defaultAccessTTL       = 15 * time.Minute
	defaultMaxRequestBytes = 1 << 20
	defaultMaxRPCTimeout   = 30 * time.Second
	defaultShutdownTimeout = 15 * time.Second
	// defaultGCPercent lets the heap grow to 5× what is live between
	// collections instead of Go's 2×: mtmd's live heap is small (the
	// decoded-record cache is bounded at about 50 MB) and every call
	// allocates, so collections at Go's default took about a tenth of the
	// CPU of a PML read; at 400 they come a quarter as often.
	defaultGCPercent = 400
)

// cacheSizes bound mtmd's in-memory caches, in entries: what one instance
// keeps of the records, data keys and access tokens its callers use, so a
// repeated read skips decryption, decoding or a signature check. The
// defaults fit a few thousand active patients; a large plan whose morning
// peak reads more distinct patients per instance sizes them up (README,
// Scale), with the memory that takes.
type cacheSizes struct {
	Records, Keys, Tokens int
}

// maxCacheEntries bounds each cache size flag (a typo's extra zeros should
// not reserve the machine's memory).
const maxCacheEntries = 10_000_000

// adminDisabled is how the environment turns the admin server off (an empty
// variable reads as unset).
const adminDisabled = "off"

// envName is the environment variable that backs a flag.
func envName(flagName string) string {
	return "MTM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet binds every Config field to its flag with the built-in default.
func newFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("mtmd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Addr, "addr", defaultAddr, "API listen `address` (Connect, gRPC and gRPC-Web over HTTP/1.1 and h2c)")
	fs.StringVar(&c.AdminAddr, "admin-addr", defaultAdminAddr, `admin listen `+"`address`"+` for /metrics and /healthz; "" or "off" disables`)
	fs.BoolVar(&c.AdminPprof, "admin-pprof", false, "also serve Go's runtime profiles (/debug/pprof/: CPU, heap, goroutines) on --admin-addr, for profiling under load")
	fs.IntVar(&c.GCPercent, "gc-percent", defaultGCPercent, "the Go garbage collector's target, as GOGC: the heap may grow to (1 + `percent`/100) × the live heap between collections; higher spends memory to save CPU; the GOGC environment variable, when set, wins")
	fs.IntVar(&c.Caches.Records, "record-cache", recordcache.DefaultEntries, "decoded patient `records` kept in memory (a 20-medicine record is about 5 KB stored and 12.5 KB of heap decoded); a read of a record held here skips its decryption and decoding")
	fs.IntVar(&c.Caches.Keys, "key-cache", seal.DefaultKeyCache, "patients' data `keys` kept open in memory (well under 1 KB each); a record read outside them unwraps its key again")
	fs.IntVar(&c.Caches.Tokens, "token-cache", auth.DefaultVerifiedCache, "verified access `tokens` whose claims are kept (about 300 bytes each); a call with a token outside them checks its ES256 signature again")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "`directory` of the embedded store and the signing keys")
	fs.StringVar(&c.RedisURL, "redis-url", "", "redis://[user:password@]host:port[/db], rediss://…, redis://h1:7000,h2:7001 (Cluster) or redis+sentinel://s1:26379,s2:26379/master; empty uses the embedded store")
	fs.StringVar(&c.KEKURI, "kek-uri", "", "key-encryption key in a cloud KMS, as a Tink `URI` (gcp-kms://projects/…/cryptoKeys/…, aws-kms://arn:aws:kms:…); needs a build that registers that KMS's client (README, PHI at rest); default: --kek-file")
	fs.StringVar(&c.KEKFile, "kek-file", "", "local key-encryption key (Tink keyset `file`, mode 0600) sealing the PHI at rest; created on first start; every instance sharing a Redis needs the same one; back it up apart from the data (default <data-dir>/phi-kek.json)")
	fs.BoolVar(&c.NoSeal, noSealFlag, false, "benchmarks only, with --bench-endpoints: write values unsealed (the load test's baseline)")
	fs.Var(&c.Reencrypt, "reencrypt", "run the re-encryption pass in the background: --reencrypt seals what is not sealed under the current keys (migration, KEK rotation), --reencrypt=rotate also gives every patient a new data key; it resumes after a restart from <data-dir>/reencrypt.cursor")
	fs.BoolVar(&c.RedisRequireDurable, "redis-require-durable", false, "refuse to start when Redis persistence can lose acknowledged writes (default: warn)")
	fs.IntVar(&c.RedisReplicaAcks, "redis-replica-acks", 0, "acknowledge a record write only once this many Redis replicas confirmed it (WAIT); 0 acknowledges once the primary has it, which a failover can lose")
	fs.DurationVar(&c.RedisReplicaTimeout, "redis-replica-timeout", 500*time.Millisecond, "how long a write waits for --redis-replica-acks replicas before it fails as unavailable")
	fs.StringVar(&c.Issuer, "issuer", defaultIssuer, "issuer (iss) of access tokens")
	fs.StringVar(&c.Audience, "audience", defaultAudience, "audience (aud) of access tokens")
	fs.DurationVar(&c.AccessTTL, "access-ttl", defaultAccessTTL, "lifetime of an access token (1m–1h)")
	fs.StringVar(&c.SigningKeys, "signing-keys", "", "where the token signing keys live: store (shared through Redis, sealed with --signing-key-wrap-file) or dir (--signing-key-dir); default store with --redis-url and no --signing-key-dir, else dir")
	fs.StringVar(&c.SigningKeyDir, "signing-key-dir", "", "`directory` of the token signing keys with --signing-keys dir (default <data-dir>/keys)")
	fs.StringVar(&c.SigningKeyWrapFile, "signing-key-wrap-file", "", "`file` of the key that seals the signing keys in the store (--signing-keys store); every instance needs the same one; created when the store has no key yet (default <data-dir>/signing-key-wrap.key)")
	fs.DurationVar(&c.KeyReload, "key-reload", time.Minute, "how often to re-read the signing keys, picking up keys rotated or retired with `mtmctl keys`")
	fs.Int64Var(&c.MaxRequestBytes, "max-request-bytes", defaultMaxRequestBytes, "largest request message accepted, in `bytes`")
	fs.IntVar(&c.MaxStreams, "max-streams", api.DefaultMaxStreams, "watch streams (WatchThread, WatchInbox) open at once on this server; past it they get resource_exhausted")
	fs.IntVar(&c.MaxPrincipalStreams, "max-streams-per-principal", api.DefaultMaxStreamsPerPrincipal, "watch streams open at once for one signed-in principal on this server")
	fs.DurationVar(&c.MaxRPCTimeout, "max-rpc-timeout", defaultMaxRPCTimeout, "longest a unary RPC may run; longer or missing client deadlines are clamped to it")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated `CIDRs` of the proxies in front of mtmd; only for a peer among them is the client taken from --forwarded-header (rightmost untrusted hop). Empty: the client is always the TCP peer")
	fs.StringVar(&c.ForwardedHeader, "forwarded-header", string(clientaddr.XForwardedFor), "the forwarding header the trusted proxies write: X-Forwarded-For or Forwarded (the other is ignored)")
	fs.DurationVar(&c.RefreshGrace, "refresh-grace", api.DefaultRefreshGrace, "how long after a refresh token is spent a repeat of it (a retry, a concurrent refresh) gets the same new token instead of revoking the sign-in (1s–5m)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.Console, "console", true, "serve the pharmacist console at /console/ on the API port")
	fs.DurationVar(&c.ConsoleIdleTimeout, "console-idle-timeout", console.DefaultIdleTimeout, "sign a console session out after this long without a request (1m–12h)")
	fs.BoolVar(&c.Demo, "demo", false, "seed a demo pharmacy, pharmacist and patient and print how to try the API")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "how long in-flight RPCs get to finish on shutdown, after --shutdown-grace")
	fs.StringVar(&c.AuditSink, "audit-sink", "file", "audit archive: file (rotating JSON lines in --audit-dir) or stdout (JSON lines for a log pipeline)")
	fs.StringVar(&c.AuditDir, "audit-dir", "", "`directory` of the audit archive (default <data-dir>/audit)")
	fs.IntVar(&c.AuditWindow, "audit-window", 1000, "access events kept per patient for the \"who accessed my record\" report")
	fs.BoolVar(&c.BenchEndpoints, "bench-endpoints", false, "also serve mtm.v1.BenchService/Empty, the load test's baseline (any signed-in caller; off in production)")
	bindReminderFlags(fs, &c.Reminders)
	bindEdgeFlags(fs, &c.Edge)
	bindHealthFlags(fs, &c.Health)
	return fs
}

// usage writes the flags, each with its environment variable.
func usage(w io.Writer) {
	var c Config
	fs := newFlagSet(&c)
	fmt.Fprintf(w, "Usage: mtmd [flags]\n\nEvery flag can also be set by its environment variable; a flag wins.\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == noSealFlag {
			return
		}
		name, help := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s %s  (%s)\n        %s", f.Name, name, envName(f.Name), help)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprintf(w, "\nTraces (OpenTelemetry, OTLP) are sent when OTEL_EXPORTER_OTLP_ENDPOINT or\n"+
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; the other standard OTEL_* variables apply.\n")
}

// parseConfig reads the flags in args over the MTM_* variables that getenv
// returns, over the defaults. It returns flag.ErrHelp for -h/--help and an
// error for unknown flags or unreadable values; it does not Validate.
func parseConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := newFlagSet(&c)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	setByFlag := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setByFlag[f.Name] = true })
	var problems []string
	fs.VisitAll(func(f *flag.Flag) {
		v := getenv(envName(f.Name))
		if setByFlag[f.Name] || v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", envName(f.Name), v, unwrapParse(err)))
		}
	})
	if len(problems) > 0 {
		return Config{}, errors.New(strings.Join(problems, "; "))
	}
	if c.AdminAddr == adminDisabled {
		c.AdminAddr = ""
	}
	if c.SigningKeys == "" {
		c.SigningKeys = bootstrap.DefaultKeySource(c.RedisURL, c.SigningKeyDir)
	}
	if c.SigningKeyDir == "" {
		c.SigningKeyDir = bootstrap.KeyDir(c.DataDir)
	}
	if c.SigningKeyWrapFile == "" {
		c.SigningKeyWrapFile = bootstrap.WrapKeyPath(c.DataDir)
	}
	if c.AuditDir == "" {
		c.AuditDir = filepath.Join(c.DataDir, "audit")
	}
	if c.KEKFile == "" && c.KEKURI == "" {
		c.KEKFile = seal.LocalKEKPath(c.DataDir)
	}
	c.tracing = tracing.Check(getenv)
	return c, nil
}

// unwrapParse shortens strconv's "strconv.ParseInt: parsing "x": invalid
// syntax" to its reason.
func unwrapParse(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return ne.Err
	}
	return err
}

// clientResolver is the client-address resolver the flags describe.
func (c Config) clientResolver() (*clientaddr.Resolver, error) {
	trusted, err := clientaddr.ParsePrefixes(c.TrustedProxies)
	if err != nil {
		return nil, err
	}
	return clientaddr.NewResolver(trusted, clientaddr.Header(c.ForwardedHeader))
}

// Validate reports every problem with the configuration together, one per
// line, or nil.
func (c Config) Validate() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if err := checkListenAddr(c.Addr); err != nil {
		add("--addr/MTM_ADDR %q: %v", c.Addr, err)
	}
	if c.AdminAddr != "" {
		if err := checkListenAddr(c.AdminAddr); err != nil {
			add("--admin-addr/MTM_ADMIN_ADDR %q: %v", c.AdminAddr, err)
		} else if c.AdminAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			add("--admin-addr/MTM_ADMIN_ADDR %q: must differ from --addr", c.AdminAddr)
		}
	}
	if c.GCPercent < 50 || c.GCPercent > 2000 {
		add("--gc-percent/MTM_GC_PERCENT %d: must be between 50 and 2000", c.GCPercent)
	}
	for _, size := range []struct {
		flag string
		n    int
	}{{"record-cache", c.Caches.Records}, {"key-cache", c.Caches.Keys}, {"token-cache", c.Caches.Tokens}} {
		if size.n < 1 || size.n > maxCacheEntries {
			add("--%s/%s %d: must be between 1 and %d", size.flag, envName(size.flag), size.n, maxCacheEntries)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		add("--data-dir/MTM_DATA_DIR: must not be empty")
	}
	if c.RedisURL != "" {
		if err := backends.CheckRedisURL(c.RedisURL); err != nil {
			add("--redis-url/MTM_REDIS_URL: %v", err)
		}
	}
	if c.KEKURI != "" && c.KEKFile != "" {
		add("--kek-uri/MTM_KEK_URI and --kek-file/MTM_KEK_FILE: give one key-encryption key, not both")
	}
	if c.KEKURI != "" && !strings.Contains(c.KEKURI, "://") {
		add("--kek-uri/MTM_KEK_URI %q: want a Tink KMS URI such as gcp-kms://… or aws-kms://…", c.KEKURI)
	}
	if c.NoSeal && !c.BenchEndpoints {
		add("--%s: only for the load test, together with --bench-endpoints (it stores PHI unencrypted)", noSealFlag)
	}
	if c.NoSeal && c.Reencrypt.on() {
		add("--%s and --reencrypt/MTM_REENCRYPT: choose one", noSealFlag)
	}
	if c.tracing != nil {
		for _, line := range strings.Split(c.tracing.Error(), "\n") {
			add("traces: %s", line)
		}
	}
	if c.RedisReplicaAcks < 0 || c.RedisReplicaAcks > 16 {
		add("--redis-replica-acks/MTM_REDIS_REPLICA_ACKS %d: must be between 0 and 16", c.RedisReplicaAcks)
	}
	if c.RedisReplicaTimeout < time.Millisecond || c.RedisReplicaTimeout > time.Second {
		add("--redis-replica-timeout/MTM_REDIS_REPLICA_TIMEOUT %s: must be between 1ms and 1s (each Redis call has 2s)", c.RedisReplicaTimeout)
	}
	if strings.TrimSpace(c.Issuer) == "" {
		add("--issuer/MTM_ISSUER: must not be empty")
	}
	if strings.TrimSpace(c.Audience) == "" {
		add("--audience/MTM_AUDIENCE: must not be empty")
	}
	if c.AccessTTL < time.Minute || c.AccessTTL > time.Hour {
		add("--access-ttl/MTM_ACCESS_TTL %s: must be between 1m and 1h", c.AccessTTL)
	}
	if strings.TrimSpace(c.SigningKeyDir) == "" {
		add("--signing-key-dir/MTM_SIGNING_KEY_DIR: must not be empty")
	}
	if c.SigningKeys != bootstrap.KeysInStore && c.SigningKeys != bootstrap.KeysInDir {
		add("--signing-keys/MTM_SIGNING_KEYS %q: must be store or dir", c.SigningKeys)
	}
	if c.KeyReload < time.Second || c.KeyReload > time.Hour {
		add("--key-reload/MTM_KEY_RELOAD %s: must be between 1s and 1h", c.KeyReload)
	}
	if _, err := c.clientResolver(); err != nil {
		add("--trusted-proxies/MTM_TRUSTED_PROXIES, --forwarded-header/MTM_FORWARDED_HEADER: %v", err)
	}
	if c.ConsoleIdleTimeout < time.Minute || c.ConsoleIdleTimeout > 12*time.Hour {
		add("--console-idle-timeout/MTM_CONSOLE_IDLE_TIMEOUT %s: must be between 1m and 12h", c.ConsoleIdleTimeout)
	}
	if c.RefreshGrace < time.Second || c.RefreshGrace > 5*time.Minute {
		add("--refresh-grace/MTM_REFRESH_GRACE %s: must be between 1s and 5m", c.RefreshGrace)
	}
	if c.MaxRequestBytes < 1<<10 || c.MaxRequestBytes > 64<<20 {
		add("--max-request-bytes/MTM_MAX_REQUEST_BYTES %d: must be between 1024 and 67108864", c.MaxRequestBytes)
	}
	if c.MaxStreams < 1 || c.MaxStreams > 1000000 {
		add("--max-streams/MTM_MAX_STREAMS %d: must be between 1 and 1000000", c.MaxStreams)
	}
	if c.MaxPrincipalStreams < 1 || c.MaxPrincipalStreams > c.MaxStreams {
		add("--max-streams-per-principal/MTM_MAX_STREAMS_PER_PRINCIPAL %d: must be between 1 and --max-streams (%d)", c.MaxPrincipalStreams, c.MaxStreams)
	}
	if c.MaxRPCTimeout <= 0 || c.MaxRPCTimeout > 10*time.Minute {
		add("--max-rpc-timeout/MTM_MAX_RPC_TIMEOUT %s: must be above 0 and at most 10m", c.MaxRPCTimeout)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		add("--log-format/MTM_LOG_FORMAT %q: must be text or json", c.LogFormat)
	}
	if _, err := c.level(); err != nil {
		add("--log-level/MTM_LOG_LEVEL %q: must be debug, info, warn or error", c.LogLevel)
	}
	if c.AuditSink != "file" && c.AuditSink != "stdout" {
		add("--audit-sink/MTM_AUDIT_SINK %q: must be file or stdout", c.AuditSink)
	}
	if c.AuditWindow < 1 || c.AuditWindow > 100000 {
		add("--audit-window/MTM_AUDIT_WINDOW %d: must be between 1 and 100000", c.AuditWindow)
	}
	if c.ShutdownTimeout <= 0 {
		add("--shutdown-timeout/MTM_SHUTDOWN_TIMEOUT %s: must be above 0", c.ShutdownTimeout)
	}
	problems = append(problems, c.Reminders.problems()...)
	problems = append(problems, c.Edge.problems()...)
	problems = append(problems, c.Health.problems()...)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
}

func (c Config) level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// newLogger builds the process logger the configuration asks for. Call it
// only on a validated Config.
func (c Config) newLogger(w io.Writer) *slog.Logger {
	level, _ := c.level()
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// checkListenAddr accepts host:port with a numeric port (0 picks a free one).
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

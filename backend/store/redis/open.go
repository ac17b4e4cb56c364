package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config says which Redis deployment to use and how to reach it.
type Config struct {
	// Addrs are host:port pairs: one for a single node, several seed
	// nodes for a Cluster, or the sentinels when MasterName is set.
	Addrs []string
	// Cluster forces Cluster mode with a single seed address.
	Cluster bool
	// MasterName selects Sentinel: the name of the monitored primary.
	MasterName string
	// Credentials for the data nodes and, separately, for the sentinels.
	Username, Password                 string
	SentinelUsername, SentinelPassword string
	// DB selects the database (single node and Sentinel only).
	DB int
	// TLS enables TLS when non-nil (rediss:// sets it).
	TLS *tls.Config
	// PoolSize is the connection pool size per node; 0 keeps go-redis's
	// default (10 per CPU).
	PoolSize int
}

// ParseConfig reads an MTM_REDIS_URL value. Accepted forms:
//
//	redis://[user:password@]host:port[/db]        single node
//	rediss://...                                   the same over TLS
//	redis://host1:port,host2:port,...              Cluster (seed nodes)
//	host1:port,host2:port,...                      Cluster, without scheme
//	redis://host:port?cluster=true                 Cluster with one seed
//	redis+sentinel://[user:password@]s1:26379,s2:26379/mastername[?db=N&sentinel_password=...]
//	rediss+sentinel://...                          Sentinel, data nodes over TLS
//
// Passwords must be percent-encoded.
func ParseConfig(s string) (Config, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Config{}, fmt.Errorf("redisstore.ParseConfig: empty Redis URL")
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		addrs := splitAddrs(s)
		return Config{Addrs: addrs, Cluster: len(addrs) > 1}, nil
	}
	sentinel := false
	switch scheme {
	case "redis", "rediss":
	case "redis+sentinel", "rediss+sentinel":
		sentinel = true
	default:
		return Config{}, fmt.Errorf("redisstore.ParseConfig: unknown scheme %q (want redis, rediss, redis+sentinel or rediss+sentinel)", scheme)
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	addrs := splitAddrs(hosts)
	if len(addrs) == 0 {
		return Config{}, fmt.Errorf("redisstore.ParseConfig: no host in Redis URL")
	}
	for _, a := range addrs {
		if hostOnly(a) == "" {
			return Config{}, fmt.Errorf("redisstore.ParseConfig: no host in address %q", a)
		}
	}
	u, err := url.Parse("redis://" + userinfo + addrs[0] + rest[end:])
	if err != nil {
		return Config{}, fmt.Errorf("redisstore.ParseConfig: %w", err)
	}
	cfg := Config{Addrs: addrs}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	q := u.Query()
	path := strings.Trim(u.Path, "/")
	if sentinel {
		if path == "" {
			return Config{}, fmt.Errorf("redisstore.ParseConfig: sentinel URL needs the primary's name as its path")
		}
		cfg.MasterName = path
		cfg.SentinelUsername = q.Get("sentinel_username")
		cfg.SentinelPassword = q.Get("sentinel_password")
		path = q.Get("db")
	}
	if path != "" {
		if cfg.DB, err = strconv.Atoi(path); err != nil {
			return Config{}, fmt.Errorf("redisstore.ParseConfig: invalid database number %q", path)
		}
	}
	if c := q.Get("cluster"); c != "" {
		if cfg.Cluster, err = strconv.ParseBool(c); err != nil {
			return Config{}, fmt.Errorf("redisstore.ParseConfig: invalid cluster=%q", c)
		}
	}
	cfg.Cluster = cfg.Cluster || (!sentinel && len(addrs) > 1)
	if strings.HasPrefix(scheme, "rediss") {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: hostOnly(addrs[0])}
	}
	return cfg, nil
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !strings.Contains(a, ":") || strings.HasSuffix(a, "]") {
				a += ":6379"
			}
			out = append(out, a)
		}
	}
	return out
}

func hostOnly(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return strings.Trim(addr[:i], "[]")
	}
	return addr
}

// UniversalOptions returns the go-redis options for cfg with every
// timeout (dial, read, write, pool wait) set to timeout, so that a dead
// node or an exhausted pool fails the call instead of hanging.
func (cfg Config) UniversalOptions(timeout time.Duration) *redis.UniversalOptions {
	if timeout <= 0 {
		timeout = Options{}.withDefaults().Timeout
	}
	return &redis.UniversalOptions{
		Addrs:                 cfg.Addrs,
		IsClusterMode:         cfg.Cluster && cfg.MasterName == "",
		MasterName:            cfg.MasterName,
		Username:              cfg.Username,
		Password:              cfg.Password,
		SentinelUsername:      cfg.SentinelUsername,
		SentinelPassword:      cfg.SentinelPassword,
		DB:                    cfg.DB,
		TLSConfig:             cfg.TLS,
		PoolSize:              cfg.PoolSize,
		DialTimeout:           timeout,
		ReadTimeout:           timeout,
		WriteTimeout:          timeout,
		PoolTimeout:           timeout,
		ContextTimeoutEnabled: true,
		ClientName:            "mtmd",
	}
}

// NewClient returns the go-redis client for cfg, with UniversalOptions'
// timeouts. A Cluster client is tuned to follow a failover in seconds
// rather than at go-redis's periodic (60s) refresh of the slot map:
//
//   - a call that fails because a node is unreachable (refused or lost
//     connection, timeout, CLUSTERDOWN, TRYAGAIN...) makes the client
//     re-read the slot map at once (ClusterClient.ReloadState; go-redis
//     itself reloads only on MOVED/ASK and READONLY, and a dead primary
//     answers neither). Reloads are coalesced by go-redis (at most one
//     every 200ms), and keep coming while calls keep failing, so the first
//     call after the cluster has promoted a replica finds it;
//   - dialing is not retried inside the pool (DialerRetries 1): the
//     cluster client already retries a call and re-routes it, and five
//     dials with backoff to a dead node only delayed that.
func (cfg Config) NewClient(timeout time.Duration) redis.UniversalClient {
	opts := cfg.UniversalOptions(timeout)
	if !opts.IsClusterMode && (len(opts.Addrs) < 2 || opts.MasterName != "") {
		return redis.NewUniversalClient(opts)
	}
	copts := opts.Cluster()
	copts.DialerRetries = 1
	c := redis.NewClusterClient(copts)
	c.AddHook(followFailover{c})
	return c
}

// followFailover reloads a Cluster client's slot map after a call fails
// because a node could not be reached.
type followFailover struct{ c *redis.ClusterClient }

func (h followFailover) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h followFailover) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(err)
		return err
	}
}

func (h followFailover) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(err)
		return err
	}
}

func (h followFailover) check(err error) {
	if nodeLost(err) {
		h.c.ReloadState(context.Background())
	}
}

// nodeLost reports whether err means a node could not be reached or no
// longer serves its slots, as opposed to a reply, a closed client or a
// caller that gave up.
func nodeLost(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, redis.ErrClosed) && unavailable(err)
}

// Open connects to the deployment cfg describes (through NewClient) and
// returns a Store that owns the client (Close closes it). It fails,
// wrapping store.ErrUnavailable, when Redis does not answer within
// opts.Timeout.
func Open(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("redisstore.Open: no Redis address")
	}
	client := cfg.NewClient(opts.Timeout)
	if opts.Instrument != nil {
		if err := opts.Instrument(client); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("redisstore.Open: instrumenting the client: %w", err)
		}
	}
	s, err := New(ctx, client, opts)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisstore.Open: %w", err)
	}
	s.owned = true
	return s, nil
}

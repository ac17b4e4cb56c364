package redisstore

import (
	"context"
	"crypto/tls"
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

// Open connects to the deployment cfg describes and returns a Store that
// owns the client (Close closes it). It fails, wrapping
// store.ErrUnavailable, when Redis does not answer within opts.Timeout.
func Open(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("redisstore.Open: no Redis address")
	}
	client := redis.NewUniversalClient(cfg.UniversalOptions(opts.Timeout))
	s, err := New(ctx, client, opts)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisstore.Open: %w", err)
	}
	s.owned = true
	return s, nil
}

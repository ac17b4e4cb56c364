package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// CheckDurability reads the persistence and eviction settings of every
// primary (CONFIG GET appendonly, appendfsync, save, maxmemory-policy and
// INFO replication) and returns one warning for each setting under which a
// write Redis acknowledged can be lost or a record silently evicted. No
// warnings means appendonly yes, appendfsync always, noeviction and no
// replicas. err is non-nil only when a primary cannot be reached; a server
// that refuses CONFIG (some managed services) yields a warning instead.
func (s *Store) CheckDurability(ctx context.Context) (warnings []string, err error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var mu sync.Mutex
	check := func(ctx context.Context, c *redis.Client) error {
		w, err := nodeDurability(ctx, c)
		mu.Lock()
		warnings = append(warnings, w...)
		mu.Unlock()
		return err
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, check)
	case *redis.Client:
		err = check(ctx, c)
	default:
		return nil, fmt.Errorf("redisstore.CheckDurability: unsupported client type %T", s.rdb)
	}
	if err != nil {
		return warnings, s.fail("redisstore.CheckDurability", err)
	}
	slices.Sort(warnings)
	return warnings, nil
}

func nodeDurability(ctx context.Context, c *redis.Client) ([]string, error) {
	addr := c.Options().Addr
	cfg := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync", "save", "maxmemory-policy"} {
		m, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			if unavailable(err) {
				return nil, err
			}
			return []string{fmt.Sprintf("%s: cannot read CONFIG %s (%v): verify with your provider that appendonly is yes, appendfsync is always or everysec and maxmemory-policy is noeviction", addr, name, err)}, nil
		}
		cfg[name] = m[name]
	}
	var w []string
	switch {
	case cfg["appendonly"] != "yes" && cfg["save"] == "":
		w = append(w, fmt.Sprintf("%s: appendonly is %q and RDB snapshots are off: every acknowledged write is lost when Redis restarts; set appendonly yes", addr, cfg["appendonly"]))
	case cfg["appendonly"] != "yes":
		w = append(w, fmt.Sprintf("%s: appendonly is %q: writes acknowledged since the last RDB snapshot (save %q) are lost when Redis stops; set appendonly yes", addr, cfg["appendonly"], cfg["save"]))
	case cfg["appendfsync"] == "everysec":
		w = append(w, fmt.Sprintf("%s: appendfsync is everysec: up to about one second of acknowledged writes is lost if the machine or its disk fails (a Redis crash alone loses nothing); set appendfsync always to lose none", addr))
	case cfg["appendfsync"] != "always":
		w = append(w, fmt.Sprintf("%s: appendfsync is %q: acknowledged writes reach disk only when the kernel flushes (typically within 30 s) and are lost if the machine fails; set appendfsync always or everysec", addr, cfg["appendfsync"]))
	}
	if p := cfg["maxmemory-policy"]; p != "noeviction" {
		w = append(w, fmt.Sprintf("%s: maxmemory-policy is %q: Redis may evict patient records when memory runs short; set maxmemory-policy noeviction", addr, p))
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		if unavailable(err) {
			return w, err
		}
		return w, nil
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok && v != "0" {
			w = append(w, fmt.Sprintf("%s: %s replica(s) are updated asynchronously: a failover to a replica can lose writes the primary acknowledged", addr, v))
		}
	}
	return w, nil
}

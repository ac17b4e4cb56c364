package procs

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a private redis-server on a free loopback port.
type Redis struct {
	*Process
	Addr string
}

// URL is the redis:// URL mtmd takes.
func (r *Redis) URL() string { return "redis://" + r.Addr }

// StartRedis starts redis-server (found on PATH) with its files in dir,
// configured as a production instance would be for mtmd: append-only file
// fsynced every second, no eviction. It returns once the server answers
// PING.
func StartRedis(ctx context.Context, dir string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("procs.StartRedis: %w (install the redis-server package)", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := start("redis", bin, dir, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
		"--daemonize", "no", "--protected-mode", "yes", "--maxmemory-policy", "noeviction",
	}, nil)
	if err != nil {
		return nil, err
	}
	r := &Redis{Process: p, Addr: addr}
	err = p.waitUntil(ctx, 15*time.Second, func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
		defer c.Close()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		_ = p.Stop(time.Second)
		return nil, err
	}
	return r, nil
}

// UsedMemory is the server's INFO used_memory in bytes.
func (r *Redis) UsedMemory(ctx context.Context) (int64, error) {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	info, err := c.InfoMap(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("procs.UsedMemory: %w", err)
	}
	v, err := strconv.ParseInt(info["Memory"]["used_memory"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("procs.UsedMemory: %w", err)
	}
	return v, nil
}

// Settle waits until the server has no rewrite of its append-only file
// running or scheduled. Seeding grows the file past Redis's rewrite
// threshold, and the rewrite (a forked process that copies the whole data
// set) would otherwise share the cores with the phases measured next: at a
// million patients it ran for minutes.
func (r *Redis) Settle(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	for {
		info, err := c.InfoMap(ctx, "persistence").Result()
		if err != nil {
			return fmt.Errorf("procs.Settle: %w", err)
		}
		p := info["Persistence"]
		if p["aof_rewrite_in_progress"] == "0" && p["aof_rewrite_scheduled"] == "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("procs.Settle: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

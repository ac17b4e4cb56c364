package wake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis carries wake-ups between processes over Redis pub/sub: Notify
// publishes on "<prefix>:wake:<topic>", and every Redis waker (one per
// mtmd) holds one pattern subscription to "<prefix>:wake:*" and wakes its
// local waiters. Publishing is fire-and-forget: a wake-up sent while a
// subscriber is reconnecting is lost, which the waiters' periodic re-read
// covers.
type Redis struct {
	hub     *Hub
	rdb     redis.UniversalClient
	ps      *redis.PubSub
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	done    chan struct{}
}

// DefaultTimeout bounds one PUBLISH when NewRedis is given no timeout.
const DefaultTimeout = time.Second

// NewRedis subscribes to the wake-ups of deployment prefix on client and
// returns once Redis has confirmed the subscription (within timeout, or
// DefaultTimeout when timeout ≤ 0). client stays the caller's; Close ends
// the subscription only. log receives subscription failures (never
// topics' contents).
func NewRedis(ctx context.Context, client redis.UniversalClient, prefix string, timeout time.Duration, log *slog.Logger) (*Redis, error) {
	if client == nil {
		return nil, errors.New("wake.NewRedis: missing redis client")
	}
	if log == nil {
		return nil, errors.New("wake.NewRedis: missing logger")
	}
	if prefix == "" {
		prefix = "mtm"
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r := &Redis{hub: NewHub(), rdb: client, prefix: prefix + ":wake:", timeout: timeout, log: log, done: make(chan struct{})}
	ps := client.PSubscribe(ctx, r.prefix+"*")
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := ps.Receive(cctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("wake.NewRedis: subscribing: %w", err)
	}
	r.ps = ps
	go r.run()
	return r, nil
}

// run wakes local waiters for every message until Close.
func (r *Redis) run() {
	defer close(r.done)
	for m := range r.ps.Channel() {
		if topic, ok := strings.CutPrefix(m.Channel, r.prefix); ok {
			r.hub.wake(topic)
		}
	}
}

// Subscribe registers a local waiter on topic; see Hub.Subscribe.
func (r *Redis) Subscribe(topic string) (<-chan struct{}, func()) { return r.hub.Subscribe(topic) }

// Watching reports how many waiters topic has in this process.
func (r *Redis) Watching(topic string) int { return r.hub.Watching(topic) }

// Notify wakes the topics' waiters in this process at once and publishes
// the wake-ups for every other process, all of them in one round trip to
// Redis. An error means other processes may not have been woken (their
// periodic re-read will catch up).
func (r *Redis) Notify(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	for _, topic := range topics {
		r.hub.wake(topic)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var err error
	if len(topics) == 1 {
		err = r.rdb.Publish(ctx, r.prefix+topics[0], "").Err()
	} else {
		_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, topic := range topics {
				p.Publish(ctx, r.prefix+topic, "")
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("wake.Notify: %w", err)
	}
	return nil
}

// Close ends the subscription and waits for the receiving goroutine.
func (r *Redis) Close() error {
	err := r.ps.Close()
	<-r.done
	if err != nil {
		return fmt.Errorf("wake.Close: %w", err)
	}
	return nil
}

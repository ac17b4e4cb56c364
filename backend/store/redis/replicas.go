package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

// Replicated writes
//
// Redis replicates asynchronously: a primary acknowledges a write before
// any replica has it, and a failover promotes a replica that may lack the
// newest acknowledged writes. With Options.ReplicaAcks > 0 every write of a
// record is followed by WAIT on the same connection of the same primary,
// and answers only when that many replicas confirmed it (or fails). So is
// every write of the reminder index whose loss after a failover would lose
// or repeat a reminder: schedules (ScheduleReminders), dose confirmations
// (RecordDose), claims and lease renewals (a lost lease lets a second
// instance send the same reminder) and their settlement (AckReminders,
// SettleReminders: a lost settlement re-sends the batch). Only the
// notification history (AppendNotifications), which is for display, is
// written without waiting.
//
// WAIT counts the replicas that acknowledged the replication offset of the
// connection's own last write, so it must travel on the very connection
// that carried the write. A go-redis pipeline on one node's client does
// that (one connection, one round trip); a ClusterClient pipeline would
// route the keyless WAIT to any primary, a MULTI cannot block, and a Lua
// script cannot call WAIT. So the write and WAIT go as one pipeline to the
// client of the primary that serves the key's slot
// (ClusterClient.MasterForKey; the client itself for a single node or
// Sentinel).
//
// go-redis re-sends a pipeline after a connection error; a re-sent write
// that found its work done (an idempotent script's replay, a ZADD of a
// member already there) propagates nothing, and WAIT on the new connection
// would confirm it at once whether or not the first send reached a replica.
// The WAIT command is therefore marked NoRetry, which keeps go-redis from
// re-sending the pipeline; writeReplicated retries only where the write
// certainly did not run (a redirect, a refused connection, NOSCRIPT) and
// otherwise returns store.ErrUnavailable (applied or not, like any write
// that loses its connection).

// replicated reports whether writes wait for replicas.
func (s *Store) replicated() bool { return s.opts.ReplicaAcks > 0 }

// eval runs sc like redis.Script.Run (EVALSHA, then EVAL when the server
// does not have the script), in a pipeline shared with concurrent script
// calls (scriptgroup.go), and, with Options.ReplicaAcks > 0, alone and
// waiting for the replicas: a write not confirmed in time fails with an
// error wrapping store.ErrNotReplicated and store.ErrUnavailable. keys
// must share a slot.
func (s *Store) eval(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	if !s.replicated() {
		return s.grouped(ctx, sc, keys, args...)
	}
	var cmd *redis.Cmd
	err := s.writeReplicated(ctx, keys[0], func(p redis.Pipeliner) redis.Cmder {
		cmd = sc.EvalSha(ctx, p, keys, args...)
		return cmd
	})
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		err = s.writeReplicated(ctx, keys[0], func(p redis.Pipeliner) redis.Cmder {
			cmd = sc.Eval(ctx, p, keys, args...)
			return cmd
		})
	}
	if cmd == nil { // never sent
		cmd = redis.NewCmd(ctx)
	}
	if err != nil {
		cmd.SetErr(err)
	}
	return cmd
}

// zadd adds member with score 0 to the sorted set key (waiting for the
// replicas like eval).
func (s *Store) zadd(ctx context.Context, key, member string) error {
	return s.apply(ctx, key, func(p redis.Pipeliner) redis.Cmder {
		return p.ZAdd(ctx, key, redis.Z{Member: member})
	})
}

// apply sends the one write that write queues (touching only key's slot)
// and, with Options.ReplicaAcks > 0, waits for the replicas like eval. It
// returns the write's error; the caller reads the reply from the command
// write returned.
func (s *Store) apply(ctx context.Context, key string, write func(redis.Pipeliner) redis.Cmder) error {
	if s.replicated() {
		return s.writeReplicated(ctx, key, write)
	}
	var cmd redis.Cmder
	_, _ = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmd = write(p)
		return nil
	})
	return cmd.Err()
}

// writeReplicated sends the write that write queues (touching only key's
// slot) and WAIT as one pipeline to the primary serving key. It returns the
// write's error, or an error wrapping store.ErrNotReplicated and
// store.ErrUnavailable when fewer than Options.ReplicaAcks replicas
// confirmed it within Options.ReplicaTimeout.
func (s *Store) writeReplicated(ctx context.Context, key string, write func(redis.Pipeliner) redis.Cmder) error {
	const attempts = 4
	for attempt := 1; ; attempt++ {
		node, err := s.primaryFor(ctx, key)
		if err != nil {
			return err
		}
		var w redis.Cmder
		wait := noRetryInt{redis.NewIntCmd(ctx, "wait", s.opts.ReplicaAcks, s.opts.ReplicaTimeout.Milliseconds())}
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			w = write(p)
			return p.Process(ctx, wait)
		})
		err = w.Err()
		if err == nil || errors.Is(err, redis.Nil) { // ran (a script may answer nil)
			n, werr := wait.Result()
			if werr != nil {
				return werr
			}
			if n < int64(s.opts.ReplicaAcks) {
				return fmt.Errorf("%w: %w: confirmed by %d of %d replicas within %s",
					store.ErrNotReplicated, store.ErrUnavailable, n, s.opts.ReplicaAcks, s.opts.ReplicaTimeout)
			}
			return err
		}
		if !notRun(err) || attempt == attempts {
			return err
		}
		// The slot moved (failover, resharding) or its primary is gone:
		// re-read the slot map and try the new primary.
		if c, ok := s.rdb.(*redis.ClusterClient); ok {
			c.ReloadState(ctx)
		}
		t := time.NewTimer(time.Duration(attempt) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// primaryFor returns the client of the primary that serves key's slot.
func (s *Store) primaryFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	default:
		return nil, fmt.Errorf("replica acknowledgements need a single node, Sentinel or Cluster client, not %T", s.rdb)
	}
}

// notRun reports whether err proves the write did not run on a primary
// that owns its slot: a redirect or refusal from a node that no longer
// serves the slot, or a connection that was never made.
func notRun(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"MOVED ", "ASK ", "READONLY ", "TRYAGAIN ", "CLUSTERDOWN "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// noRetryInt is a command go-redis never re-sends: a pipeline holding it
// is not retried after a connection error (see the section comment).
type noRetryInt struct{ *redis.IntCmd }

func (noRetryInt) NoRetry() bool { return true }

package redisstore

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// maxAuditGroup bounds how many audit appends share one pipeline.
const maxAuditGroup = 128

// auditGroup sends the audit appends of concurrent calls in one pipeline:
// every call that arrives while a pipeline is out waits for it and then
// goes out with the others in the next one, so a busy instance writes its
// access trail in one round trip (one write and one read on the socket)
// for many calls instead of one each. It adds no delay: an append that
// finds nothing in flight goes out at once, alone. Each call returns only
// once Redis answered for its own append, as if it had been sent alone.
//
// There is no background goroutine: the first waiting caller sends the
// group (its own append included) and hands the next group to the first
// append queued behind it, as bolt's group commit does.
type auditGroup struct {
	mu    sync.Mutex
	queue []*auditAppend
	busy  bool
}

// auditAppend is one appendAudit script call and, once its pipeline
// answered, its result.
type auditAppend struct {
	keys []string
	args []any
	n    int
	err  error
	// signal receives true when this caller must send the next group,
	// false when its append is done (n, err set).
	signal chan bool
}

// appendAudit runs the appendAudit script for keys and args in a pipeline
// shared with concurrent callers and returns its reply.
func (s *Store) appendAudit(ctx context.Context, keys []string, args ...any) (int, error) {
	g := &s.audits
	a := &auditAppend{keys: keys, args: args, signal: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, a)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead && !<-a.signal {
		return a.n, a.err
	}

	g.mu.Lock()
	n := min(len(g.queue), maxAuditGroup)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	// The group's pipeline outlives the leader's own cancellation (the
	// others are waiting on it) but not the store's call timeout.
	cctx, cancel := s.call(context.WithoutCancel(ctx))
	s.sendAudits(cctx, group)
	cancel()
	for _, w := range group {
		if w != a {
			w.signal <- false
		}
	}

	g.mu.Lock()
	var next *auditAppend
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.busy, g.queue = false, nil
	}
	g.mu.Unlock()
	if next != nil {
		next.signal <- true
	}
	return a.n, a.err
}

// sendAudits runs group's scripts in one pipeline (EVALSHA; the few that
// find the script missing, after a restart or a failover, run again with
// EVAL) and sets each one's result. On a Cluster, go-redis splits the
// pipeline by node.
func (s *Store) sendAudits(ctx context.Context, group []*auditAppend) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(group))
	for i, w := range group {
		cmds[i] = s.scripts.appendAudit.EvalSha(ctx, pipe, w.keys, w.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, w := range group {
		c := cmds[i]
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			c = s.scripts.appendAudit.Eval(ctx, s.rdb, w.keys, w.args...)
		}
		w.n, w.err = c.Int()
	}
}

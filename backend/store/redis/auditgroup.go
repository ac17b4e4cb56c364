package redisstore

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store/batch"
)

// maxAuditGroup bounds how many audit appends share one pipeline.
const maxAuditGroup = 128

// auditAppend is one appendAudit script call and, once its pipeline
// answered, its result.
type auditAppend struct {
	ctx  context.Context
	keys []string
	args []any
	n    int
	err  error
}

func newAuditGroup() *batch.Group[*auditAppend] {
	return &batch.Group[*auditAppend]{Max: maxAuditGroup}
}

// appendAudit runs the appendAudit script for keys and args in a pipeline
// shared with concurrent callers (batch.Group): every append that arrives
// while a pipeline is out goes out with the others in the next one, so a
// busy instance writes its access trail in one round trip for many calls
// instead of one each. Each call returns only once Redis answered for its
// own append, as if it had been sent alone.
func (s *Store) appendAudit(ctx context.Context, keys []string, args ...any) (int, error) {
	a := &auditAppend{ctx: ctx, keys: keys, args: args}
	s.audits.Do(a, s.sendAudits)
	return a.n, a.err
}

// sendAudits runs group's scripts in one pipeline (EVALSHA; the few that
// find the script missing, after a restart or a failover, run again with
// EVAL) and sets each one's result. On a Cluster, go-redis splits the
// pipeline by node. The pipeline outlives the cancellation of the caller
// that sends it (the others are waiting on it) but not the store's call
// timeout.
func (s *Store) sendAudits(group []*auditAppend) {
	ctx, cancel := s.call(context.WithoutCancel(group[0].ctx))
	defer cancel()
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

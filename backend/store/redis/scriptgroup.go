package redisstore

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store/batch"
)

// maxScriptGroup bounds how many script calls share one pipeline.
const maxScriptGroup = 128

// scriptCall is one script call and, once its pipeline answered, its
// reply.
type scriptCall struct {
	ctx    context.Context
	script *redis.Script
	keys   []string
	args   []any
	reply  *redis.Cmd
}

func newScriptGroup() *batch.Group[*scriptCall] {
	return &batch.Group[*scriptCall]{Max: maxScriptGroup}
}

// grouped runs script for keys and args in a pipeline shared with
// concurrent callers (batch.Group): every call that arrives while a
// pipeline is out goes out with the others in the next one, so a busy
// instance sends its access trail (appendAudit), the app's record reads
// (readWithParts) and its other script writes in one round trip for many calls instead of one each. Each
// call returns only once Redis answered for its own script, as if it had
// been sent alone. Each script is atomic on its own; the calls of one
// pipeline are not one transaction.
func (s *Store) grouped(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	c := &scriptCall{ctx: ctx, script: script, keys: keys, args: args}
	s.scriptCalls.Do(c, s.sendScripts)
	return c.reply
}

// sendScripts runs group's scripts in one pipeline (EVALSHA; the few that
// find their script missing, after a restart or a failover, run again
// with EVAL) and sets each one's reply. On a Cluster, go-redis splits the
// pipeline by node. The pipeline outlives the cancellation of the caller
// that sends it (the others are waiting on it) but not the store's call
// timeout.
func (s *Store) sendScripts(group []*scriptCall) {
	ctx, cancel := s.call(context.WithoutCancel(group[0].ctx))
	defer cancel()
	pipe := s.rdb.Pipeline()
	for _, c := range group {
		c.reply = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for _, c := range group {
		if err := c.reply.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			c.reply = c.script.Eval(ctx, s.rdb, c.keys, c.args...)
		}
	}
}

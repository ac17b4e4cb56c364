package redistest

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Requests is a go-redis hook that counts the requests a client sends to
// Redis: one per command, one per pipeline, each a wait for an answer.
// What go-redis sends to set up a new pooled connection (HELLO, the
// CLIENT SETINFO pipeline) is not counted: it happens when calls first
// run at once, not per call. Add it with client.AddHook.
type Requests struct{ n atomic.Int64 }

// N returns the requests counted so far.
func (r *Requests) N() int64 { return r.n.Load() }

func (r *Requests) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *Requests) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connectionSetup(cmd) {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (r *Requests) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !slices.ContainsFunc(cmds, connectionSetup) {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// connectionSetup reports whether cmd is part of go-redis opening a new
// pooled connection.
func connectionSetup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client":
		return true
	}
	return false
}

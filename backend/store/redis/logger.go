package redisstore

import (
	"context"
	"fmt"
	"log/slog"
)

// ClientLogger adapts a *slog.Logger to go-redis's internal logger (pass it
// to redis.SetLogger), so that the client's own messages (dial and pool
// failures, cluster state reloads) come out as structured lines in the
// process's log format instead of raw "redis: … pool.go:…" lines on
// stderr: level warn, message ClientLogMessage, the text under "detail".
// go-redis's messages name addresses and errors, never keys or values.
type ClientLogger struct{ Logger *slog.Logger }

// ClientLogMessage is the message of every line ClientLogger writes.
const ClientLogMessage = "redis client"

// Printf implements go-redis's internal.Logging.
func (c ClientLogger) Printf(ctx context.Context, format string, v ...any) {
	c.Logger.WarnContext(ctx, ClientLogMessage, slog.String("detail", fmt.Sprintf(format, v...)))
}

package main

import (
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/telemetry"
	"github.com/mtmapp/mtm/backend/telemetry/tracing"
)

// logFlushInterval bounds how long a log line waits in mtmd's buffer
// before an operator tailing the log sees it.
const logFlushInterval = 100 * time.Millisecond

// bufferLogs returns a LogWriter in front of stdout when stdout is a file
// descriptor (a file, a pipe, a terminal), where every write is a system
// call: one per access line was about a tenth of the server CPU of an
// empty call (BenchmarkStackEmpty profile). It returns
// nil for any other writer (in-memory ones gain nothing).
func bufferLogs(stdout io.Writer) *telemetry.LogWriter {
	if _, fd := stdout.(interface{ Fd() uintptr }); !fd {
		return nil
	}
	lw, err := telemetry.NewLogWriter(stdout, logFlushInterval)
	if err != nil {
		return nil // cannot happen: a writer and a positive interval
	}
	return lw
}

// logFoldInterval is how often a recurring warning is summarized.
const logFoldInterval = 30 * time.Second

// foldRepeats returns logger with the warnings that recur during an outage
// (a failed reminder batch per shard every poll, go-redis dial failures)
// folded into one summary line per logFoldInterval with a count.
func foldRepeats(logger *slog.Logger) *slog.Logger {
	return slog.New(telemetry.FoldRepeats(logger.Handler(), telemetry.FoldConfig{
		Messages: []string{"reminder batch failed", redisstore.ClientLogMessage, tracing.ExportFailedMessage},
		Interval: logFoldInterval,
	}))
}

// installProcessLogger makes logger the destination of every line the
// process writes besides its own: go-redis's internal messages (folded)
// and anything using the standard log or slog default. Only main calls it:
// it changes process-wide state.
func installProcessLogger(logger *slog.Logger) {
	slog.SetDefault(logger)
	redis.SetLogger(redisstore.ClientLogger{Logger: foldRepeats(logger)})
}

// startupLogger is the logger for the line main writes when run fails,
// possibly before the configuration could be read: in the format that
// --log-format or MTM_LOG_FORMAT asks for (json or text), text otherwise.
func startupLogger(args []string, getenv func(string) string, w io.Writer) *slog.Logger {
	format := getenv(envName("log-format"))
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "log-format" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		format = value
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

package telemetry

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAccessLineToFile is one access line (the attributes of an
// empty call's) through slog's JSON handler to a file: "direct" as mtmd
// wrote it before (one write system call per line), "batched" through a
// LogWriter. Compare their cpu-µs/op in one run.
func BenchmarkAccessLineToFile(b *testing.B) {
	for _, batched := range []bool{false, true} {
		name := "direct"
		if batched {
			name = "batched"
		}
		b.Run(name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "mtmd.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var w io.Writer = f
			if batched {
				lw, err := NewLogWriter(f, 100*time.Millisecond)
				if err != nil {
					b.Fatal(err)
				}
				defer lw.Close()
				w = lw
			}
			h := slog.NewJSONHandler(w, nil)
			b.ReportAllocs()
			defer reportCPU(b)()
			for range b.N {
				rec := slog.NewRecord(time.Now(), slog.LevelInfo, "rpc", 0)
				rec.AddAttrs(
					slog.String("request_id", "0123456789ABCDEFGHIJKLMNOP"),
					slog.String("procedure", "/mtm.v1.BenchService/Empty"),
					slog.String("protocol", "connect"),
					slog.String("stream_type", "unary"),
					slog.String("code", "ok"),
					slog.Float64("duration_ms", 0.123),
					slog.String("client_addr", "127.0.0.1"),
					slog.String("actor", "acct_0123456789"),
				)
				if err := h.Handle(context.Background(), rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

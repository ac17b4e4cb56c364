package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/telemetry"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// BenchmarkUnaryOverhead measures what the telemetry interceptor and the
// deadline clamp add to one unary call, without the network.
func BenchmarkUnaryOverhead(b *testing.B) {
	metrics, err := telemetry.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ti, err := telemetry.NewInterceptor(telemetry.Config{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: metrics,
	})
	if err != nil {
		b.Fatal(err)
	}
	dc, err := telemetry.NewDeadlineClamp(30*time.Second, 0)
	if err != nil {
		b.Fatal(err)
	}
	handler := connect.UnaryFunc(func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) {
		return connect.NewResponse(&mtmv1.SearchPatientsResponse{}), nil
	})
	cases := []struct {
		name string
		fn   connect.UnaryFunc
	}{
		{"bare", handler},
		{"telemetry", ti.WrapUnary(handler)},
		{"telemetry+clamp", ti.WrapUnary(dc.WrapUnary(handler))},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				req := connect.NewRequest(&mtmv1.SearchPatientsRequest{})
				if _, err := c.fn(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

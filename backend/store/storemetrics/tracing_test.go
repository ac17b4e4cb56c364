package storemetrics

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
)

// TestSpans: with Traced, each operation on the embedded store is a child
// of the caller's span that ends with the operation; a contract answer
// (not found) is not an error; without a tracer the caller's span is left
// alone.
func TestSpans(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s, err := Wrap(db, prometheus.NewRegistry(), nil, Traced(tp.Tracer("store")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, rpc := tp.Tracer("rpc").Start(context.Background(), "rpc")
	if _, err := s.GetPatient(ctx, "pt-none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetPatient = %v", err)
	}
	ended := rec.Ended()
	if len(ended) != 1 || ended[0].Name() != "store.GetPatient" {
		t.Fatalf("ended spans %v, want store.GetPatient alone (the caller's still open)", ended)
	}
	if ended[0].Parent().SpanID() != rpc.SpanContext().SpanID() {
		t.Error("store span is not the caller's child")
	}
	if ended[0].Status().Code != 0 {
		t.Errorf("not found marked the span %v", ended[0].Status())
	}
	rpc.End()

	plain, err := Wrap(db, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec2 := tracetest.NewSpanRecorder()
	tp2 := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec2))
	ctx, outer := tp2.Tracer("rpc").Start(context.Background(), "rpc")
	_, _ = plain.GetPatient(ctx, "pt-none")
	if len(rec2.Ended()) != 0 {
		t.Errorf("an untraced store ended the caller's span")
	}
	outer.End()
}

// BenchmarkTracing measures a measured GetPatient on the embedded store
// without a tracer (what mtmd runs when no OTEL endpoint is set), with
// one under an unsampled parent, and under a sampled RPC span with spans
// recorded and batched to an exporter that drops them.
func BenchmarkTracing(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pt := store.Patient{ID: "pt-1", PharmacyID: "ph-1", GivenName: "Pat", FamilyName: "One", TimeZone: "UTC"}
	if err := db.CreatePatient(context.Background(), pt); err != nil {
		b.Fatal(err)
	}
	sampled := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer sampled.Shutdown(context.Background())
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	for _, c := range []struct {
		name string
		tp   *sdktrace.TracerProvider
	}{{"off", nil}, {"unsampled", unsampled}, {"sampled", sampled}} {
		b.Run(c.name, func(b *testing.B) {
			var opts []Option
			ctx := context.Background()
			if c.tp != nil {
				opts = append(opts, Traced(c.tp.Tracer("store")))
				var span interface{ End(...trace.SpanEndOption) }
				ctx, span = c.tp.Tracer("rpc").Start(ctx, "rpc")
				defer span.End()
			}
			s, err := Wrap(db, prometheus.NewRegistry(), nil, opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.GetPatient(ctx, "pt-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

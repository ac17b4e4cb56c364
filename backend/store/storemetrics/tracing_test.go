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

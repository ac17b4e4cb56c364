package dispatch_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/backend/store/storemetrics"
	"github.com/mtmapp/mtm/notifications/dispatch"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

// TestBatchSpans runs one reminder batch on the embedded store (measured
// and traced as mtmd wires it) through the real Firebase SDK: the batch is
// a span, the store operations it makes (bbolt) and its FCM send are its
// children, the SendEach call the send's, and no span names the patient,
// the medicine or the device token.
func TestBatchSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := storemetrics.Wrap(db, prometheus.NewRegistry(), nil, storemetrics.Traced(tp.Tracer("store")))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, st)
	srv := httptest.NewServer(fcmfake.New(fcmfake.Options{}))
	t.Cleanup(srv.Close)
	sender, err := push.NewFCM(t.Context(), push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler),
		Tracer: tp.Tracer("push")})
	if err != nil {
		t.Fatal(err)
	}
	h.patient("pt-zqxtrace", func(p *store.Patient) {
		p.GivenName, p.FamilyName = "Zqxgiven", "Zqxfamily"
		p.Medications[0].Name = "Zqxdrugol"
		p.Devices[0].FCMToken = "zqxtoken-1"
	})
	d, err := dispatch.New(dispatch.Config{Store: st, Sender: sender, Logger: slog.New(slog.DiscardHandler), Now: h.clock.Now,
		Lease: 30 * time.Second, Batch: 1000, Poll: 10 * time.Millisecond, Tracer: tp.Tracer("dispatch")})
	if err != nil {
		t.Fatal(err)
	}
	rec.Reset() // the set-up's store calls had no parent
	h.clock.Set(eightAM.Add(time.Minute))
	if n := h.runAll(d); n != 1 {
		t.Fatalf("the round claimed %d reminders, want 1", n)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	if len(byName["dispatch.batch"]) != 1 {
		t.Fatalf("%d batch spans, want 1 (empty shards get none): %v", len(byName["dispatch.batch"]), names(spans))
	}
	batch := byName["dispatch.batch"][0]
	childOf := func(name string, parent sdktrace.ReadOnlySpan) {
		t.Helper()
		if len(byName[name]) == 0 {
			t.Errorf("no %s span: %v", name, names(spans))
			return
		}
		for _, s := range byName[name] {
			if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("%s is not a child of %s", name, parent.Name())
			}
		}
	}
	childOf("store.LoadReminderContext", batch)
	childOf("store.SettleReminders", batch)
	childOf("fcm.send", batch)
	if sends := byName["fcm.send"]; len(sends) > 0 {
		childOf("fcm.send_each", sends[0])
	}
	for _, s := range spans {
		var text strings.Builder
		text.WriteString(s.Name() + s.Status().Description)
		for _, a := range s.Attributes() {
			text.WriteString(" " + string(a.Key) + "=" + a.Value.Emit())
		}
		for _, marker := range []string{"Zqxgiven", "Zqxfamily", "Zqxdrugol", "zqxtoken"} {
			if strings.Contains(text.String(), marker) {
				t.Errorf("span %s carries %q: %s", s.Name(), marker, text.String())
			}
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

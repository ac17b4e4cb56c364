package tracing

import (
	"context"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type env map[string]string

func (e env) get(k string) string { return e[k] }

// TestNothingSetMeansNoTracing: without an endpoint mtmd builds nothing,
// so no RPC, store call or Redis command pays for tracing.
func TestNothingSetMeansNoTracing(t *testing.T) {
	for _, e := range []env{
		{},
		{"OTEL_SERVICE_NAME": "mtmd"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		tr, err := FromEnv(context.Background(), e.get, "", nil)
		if tr != nil || err != nil {
			t.Errorf("FromEnv(%v) = %v, %v; want nil, nil", e, tr, err)
		}
		if i, err := tr.Interceptor(); i != nil || err != nil {
			t.Errorf("a nil Tracing gave an interceptor")
		}
		if tr.Tracer("x") != nil || tr.InstrumentRedis(nil) != nil || tr.Shutdown(context.Background()) != nil {
			t.Errorf("a nil Tracing is not a no-op")
		}
	}
}

func TestCheckListsBadSettings(t *testing.T) {
	bad := env{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
		"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}
	err := Check(bad.get)
	if err == nil || !strings.Contains(err.Error(), "http/json") || !strings.Contains(err.Error(), "OTEL_TRACES_SAMPLER_ARG") {
		t.Errorf("Check = %v, want both the protocol and the sampler argument named", err)
	}
	if err := Check(env{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}.get); err != nil {
		t.Errorf("Check with tracing off = %v, want nil", err)
	}
	good := env{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "traceidratio",
		"OTEL_TRACES_SAMPLER_ARG": "0.25"}
	if err := Check(good.get); err != nil {
		t.Errorf("Check(%v) = %v", good, err)
	}
}

// TestOrphanStoreSpansAreDropped: a store or Redis span with no parent
// (a background poll) is not recorded; under an RPC span it is.
func TestOrphanStoreSpansAreDropped(t *testing.T) {
	s, err := samplerFromEnv(env{}.get)
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(s))
	tr := tp.Tracer("t")
	ctx := context.Background()
	_, orphan := tr.Start(ctx, "store.ClaimDueReminders")
	orphan.End()
	_, cmd := tr.Start(ctx, "evalsha", trace.WithSpanKind(trace.SpanKindClient))
	cmd.End()
	rctx, rpc := tr.Start(ctx, "mtm.v1.PatientService/GetMedicationList", trace.WithSpanKind(trace.SpanKindServer))
	sctx, st := tr.Start(rctx, "store.GetPatient")
	_, child := tr.Start(sctx, "evalsha", trace.WithSpanKind(trace.SpanKindClient))
	child.End()
	st.End()
	rpc.End()
	var got []string
	for _, s := range rec.Ended() {
		got = append(got, s.Name())
	}
	if strings.Join(got, ",") != "evalsha,store.GetPatient,mtm.v1.PatientService/GetMedicationList" {
		t.Errorf("recorded %q, want the RPC's three spans only", got)
	}
}

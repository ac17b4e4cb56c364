// Package tracing sends OpenTelemetry traces to an OTLP collector when the
// standard OTEL_EXPORTER_OTLP_* environment variables name one, and does
// nothing at all otherwise: with no endpoint set, FromEnv returns nil and
// nothing is instrumented.
//
// Spans carry ids (procedure, store operation, Redis command names, shard,
// counts), never request bodies, Redis arguments or values, or anything
// from a patient's record.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ExportFailedMessage is the message of the warning logged when the
// OpenTelemetry SDK reports an error (a collector that cannot be reached).
const ExportFailedMessage = "traces not exported"

// ServiceName is the service.name of the spans unless OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "mtmd"

// Tracing is a running trace pipeline. A nil *Tracing is valid and means
// tracing is off: its methods return no-op values and cost nothing.
type Tracing struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// Enabled reports whether the environment asks for traces: an OTLP endpoint
// is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// OTEL_SDK_DISABLED is not "true" and OTEL_TRACES_EXPORTER is not "none".
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") ||
		strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// protocol is the OTLP transport the environment asks for
// (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL;
// default http/protobuf as the specification says).
func protocol(getenv func(string) string) string {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
	}
	return "http/protobuf"
}

// Check reports, without connecting, what FromEnv would refuse (an OTLP
// protocol other than grpc or http/protobuf), so that start-up lists it
// with every other configuration problem. It is nil when tracing is off.
func Check(getenv func(string) string) error {
	if !Enabled(getenv) {
		return nil
	}
	var errs []error
	switch p := protocol(getenv); p {
	case "grpc", "http/protobuf":
	default:
		errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: mtmd exports traces over grpc or http/protobuf", p))
	}
	if _, err := samplerFromEnv(getenv); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// FromEnv starts the trace pipeline the environment describes, or returns
// nil (tracing off) when no OTLP endpoint is set (see Enabled). Decisions
// are read through getenv; the exporter, the sampler, the resource and the
// batch processor also read the OTEL_* variables of the process
// environment themselves (endpoint, headers, timeout, TLS certificates,
// compression, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*),
// as every OpenTelemetry SDK does. The sampler is OTEL_TRACES_SAMPLER's
// (default parentbased_always_on), except that store and Redis spans with
// no parent (background polls) are dropped.
// version becomes service.version. Nothing is sent until spans end, so an
// unreachable collector does not stop the start; the SDK's errors (its
// process-wide error handler) go to logger as ExportFailedMessage
// warnings.
func FromEnv(ctx context.Context, getenv func(string) string, version string, logger *slog.Logger) (*Tracing, error) {
	if !Enabled(getenv) {
		return nil, nil
	}
	if logger == nil {
		return nil, errors.New("tracing.FromEnv: missing logger")
	}
	if err := Check(getenv); err != nil {
		return nil, fmt.Errorf("tracing.FromEnv: %w", err)
	}
	var exp sdktrace.SpanExporter
	var err error
	if protocol(getenv) == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing.FromEnv: exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", ServiceName)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	// Later options win: the environment's service name over the default.
	res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing.FromEnv: resource: %w", err)
	}
	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing.FromEnv: %w", err)
	}
	// The SDK reports export failures to a process-wide handler, which
	// would otherwise write its own lines to stderr.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn(ExportFailedMessage, "error", err.Error())
	}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracing{tp: tp, prop: propagation.TraceContext{}}, nil
}

// TracerProvider returns the provider, or a no-op one when t is nil.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil {
		return noop.NewTracerProvider()
	}
	return t.tp
}

// Tracer returns the named tracer, or nil when t is nil (callers that take
// an optional tracer then skip their spans).
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tp.Tracer(name)
}

// Interceptor returns the Connect server interceptor that gives every RPC
// a span (otelconnect), continuing the trace of an incoming W3C
// traceparent header, or nil when t is nil. It records the procedure and
// the code, never messages, message sizes or the client's address. It
// must come before (outside) the interceptor that builds the request's
// logger, so that the log lines carry the trace id.
func (t *Tracing) Interceptor() (connect.Interceptor, error) {
	if t == nil {
		return nil, nil
	}
	i, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(t.tp),
		otelconnect.WithPropagator(t.prop),
		otelconnect.WithTrustRemote(),
		otelconnect.WithoutMetrics(),
		otelconnect.WithoutServerPeerAttributes(),
		otelconnect.WithoutTraceEvents(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing.Interceptor: %w", err)
	}
	return i, nil
}

// InstrumentRedis adds go-redis's own tracing hook (redisotel) to rdb, and
// to every Cluster node it opens later: one client span per command or
// pipeline, named by the command ("evalsha", "redis.pipeline evalsha wait"),
// without the statement (no keys, arguments or values) and without the
// caller's file and line. Call it before rdb sends its first command. It
// does nothing when t is nil.
func (t *Tracing) InstrumentRedis(rdb redis.UniversalClient) error {
	if t == nil {
		return nil
	}
	return redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(t.tp),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false),
	)
}

// Shutdown sends the spans still buffered and stops the pipeline; ctx
// bounds the wait. It does nothing when t is nil.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return errors.Join(errors.New("tracing: flushing spans"), err)
	}
	return nil
}

// Protocol is the OTLP transport FromEnv uses: "grpc" or "http/protobuf".
func Protocol(getenv func(string) string) string { return protocol(getenv) }

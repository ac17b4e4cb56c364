package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// otlpReceiver is an OTLP/HTTP trace collector: it decodes every
// ExportTraceServiceRequest posted to /v1/traces and keeps the spans and
// the raw bodies.
type otlpReceiver struct {
	mu     sync.Mutex
	spans  []*tracepb.Span
	bodies [][]byte
	names  []string // service.name of each batch
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf POST to /v1/traces", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ex collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &ex); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	for _, rs := range ex.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				r.names = append(r.names, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *otlpReceiver) snapshot() ([]*tracepb.Span, [][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...), append([][]byte(nil), r.bodies...), append([]string(nil), r.names...)
}

// TestTracesToOTLP runs a real mtmd process on a real redis-server with the
// standard OTEL_* variables pointing at an OTLP/HTTP receiver, signs in and
// reads a medication list (PML) with a W3C traceparent of the caller's own.
// The spans arrive (only at shutdown: the batch delay is a minute, so the
// flush on SIGTERM is what sends them), the PML read's RPC span continues
// the caller's trace, the store operations are its children and the Redis
// commands theirs, the request's log lines carry the trace id, and nothing
// from the record or the sign-in (names, medication, e-mail) is in any
// exported byte.
func TestTracesToOTLP(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	url := "redis://" + addr
	ctx := context.Background()
	const (
		email      = "tracemarker.admin@zqx.test"
		password   = "a long admin password"
		givenName  = "Zqxgiven"
		familyName = "Zqxfamily"
		drug       = "Zqxdrugol"
	)
	dataDir := t.TempDir() // mtmd's, holding the key-encryption key the store is sealed with
	st, _, err := backends.Open(ctx, backends.Settings{RedisURL: url, DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bootstrap.CreatePharmacy(ctx, st, time.Now(), "Trace Pharmacy", email, password, "Zqxadmin"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "mtmd-trace-test")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "60000") // only the shutdown flush sends
	cmd, stdout, stderr := mtmdProcess(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--log-format", "json", "--redis-url", url, "--shutdown-grace", "0s")
	waitFor(t, 20*time.Second, "mtmd serving", func() bool { return strings.Contains(stdout.String(), `"msg":"mtmd serving"`) })
	base := "http://" + servingAddr(t, stdout.String())

	authC := mtmv1connect.NewAuthServiceClient(http1Client(), base)
	login, err := authC.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		t.Fatal(err)
	}
	care := mtmv1connect.NewCareServiceClient(http1Client(), base, bearerOpt(login.Msg.GetTokens().GetAccessToken()))
	enrolled, err := care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: givenName, FamilyName: familyName,
		DateOfBirth: "1944-04-04", TimeZone: "America/Chicago"}))
	if err != nil {
		t.Fatal(err)
	}
	pid := enrolled.Msg.GetPatient().GetId()
	if _, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pid,
		Medication: &mtmv1.MedicationFields{Name: drug, Strength: "5 mg", HowIUseIt: "daily"}})); err != nil {
		t.Fatal(err)
	}
	act, err := authC.ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: enrolled.Msg.GetActivationCode(),
		DateOfBirth: "1944-04-04", DeviceName: "phone"}))
	if err != nil {
		t.Fatal(err)
	}
	patient := mtmv1connect.NewPatientServiceClient(http1Client(), base, bearerOpt(act.Msg.GetTokens().GetAccessToken()))
	// The PML read, inside the caller's trace.
	const traceID, parentID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
	pmlReq := connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: pid})
	pmlReq.Header().Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	pmlReq.Header().Set("X-Request-Id", "trace-test-pml")
	pml, err := patient.GetMedicationList(ctx, pmlReq)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pml.Msg.String(), drug) {
		t.Fatalf("the PML read did not return the medication: %v", pml.Msg)
	}
	if spans, _, _ := recv.snapshot(); len(spans) != 0 {
		t.Fatalf("%d spans arrived before shutdown despite a one-minute batch delay", len(spans))
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtmd after SIGTERM: %v\n%s", err, stderr)
	}
	spans, bodies, names := recv.snapshot()
	if len(spans) == 0 {
		t.Fatalf("no spans were flushed at shutdown\n%s", stdout)
	}
	for _, n := range names {
		if n != "mtmd-trace-test" {
			t.Errorf("service.name %q, want OTEL_SERVICE_NAME's", n)
		}
	}

	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[hex.EncodeToString(s.GetSpanId())] = s
	}
	var rpc *tracepb.Span
	for _, s := range spans {
		if s.GetName() == "mtm.v1.PatientService/GetMedicationList" {
			rpc = s
		}
	}
	if rpc == nil {
		t.Fatalf("no span for the PML read among %d: %v", len(spans), spanNames(spans))
	}
	if got := hex.EncodeToString(rpc.GetTraceId()); got != traceID {
		t.Errorf("PML read span is in trace %s, want the caller's %s", got, traceID)
	}
	if got := hex.EncodeToString(rpc.GetParentSpanId()); got != parentID {
		t.Errorf("PML read span's parent is %q, want the caller's span %s", got, parentID)
	}
	if rpc.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("PML read span kind %v, want server", rpc.GetKind())
	}
	rpcID := hex.EncodeToString(rpc.GetSpanId())
	var storeSpans, redisSpans int
	for _, s := range spans {
		if hex.EncodeToString(s.GetTraceId()) != traceID {
			continue
		}
		parent := byID[hex.EncodeToString(s.GetParentSpanId())]
		switch {
		case strings.HasPrefix(s.GetName(), "store."):
			if hex.EncodeToString(s.GetParentSpanId()) != rpcID {
				t.Errorf("store span %s is not a child of the RPC span", s.GetName())
			}
			storeSpans++
		case s.GetKind() == tracepb.Span_SPAN_KIND_CLIENT && parent != nil && strings.HasPrefix(parent.GetName(), "store."):
			redisSpans++
		}
	}
	if storeSpans == 0 || redisSpans == 0 {
		t.Errorf("the PML read's trace has %d store spans and %d Redis command spans under them, want some of each: %v",
			storeSpans, redisSpans, spanNames(spans))
	}
	var login_ bool
	for _, s := range spans {
		login_ = login_ || s.GetName() == "mtm.v1.AuthService/Login"
	}
	if !login_ {
		t.Errorf("no span for the sign-in: %v", spanNames(spans))
	}

	for _, marker := range []string{email, givenName, familyName, drug, "Zqxadmin", password} {
		for _, b := range bodies {
			if strings.Contains(string(b), marker) {
				t.Errorf("exported spans contain %q", marker)
				break
			}
		}
	}

	// The PML read's log line leads to its trace.
	var logged bool
	for line := range strings.Lines(stdout.String()) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["request_id"] == "trace-test-pml" && m["msg"] == "rpc" {
			logged = true
			if m["trace_id"] != traceID {
				t.Errorf("the PML read's log line has trace_id %v, want %s: %s", m["trace_id"], traceID, line)
			}
		}
	}
	if !logged {
		t.Error("no log line for the PML read")
	}
}

// servingAddr is the API address in mtmd's JSON "mtmd serving" line.
func servingAddr(t *testing.T, out string) string {
	t.Helper()
	for line := range strings.Lines(out) {
		var m struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "mtmd serving" {
			return m.Addr
		}
	}
	t.Fatalf("no serving line in:\n%s", out)
	return ""
}

func spanNames(spans []*tracepb.Span) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.GetName())
	}
	return names
}

// TestTracesCollectorDown: with the collector unreachable, calls are
// served, the SDK's export failures are logged as JSON warnings (never
// the SDK's own stderr lines), and SIGTERM still stops mtmd in order.
func TestTracesCollectorDown(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	down := ln.URL
	ln.Close() // nothing listens there any more
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", down)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
	cmd, stdout, stderr := mtmdProcess(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--log-format", "json", "--shutdown-grace", "0s")
	waitFor(t, 20*time.Second, "mtmd serving", func() bool { return strings.Contains(stdout.String(), `"msg":"mtmd serving"`) })
	base := "http://" + servingAddr(t, stdout.String())
	authC := mtmv1connect.NewAuthServiceClient(http1Client(), base)
	_, err := authC.Login(context.Background(), connect.NewRequest(&mtmv1.LoginRequest{Email: "nobody@zqx.test", Password: "a long wrong password"}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("sign-in with the collector down: %v, want unauthenticated", err)
	}
	waitFor(t, 20*time.Second, "the export failure logged", func() bool {
		return strings.Contains(stdout.String(), `"msg":"traces not exported"`)
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("mtmd after SIGTERM: %v\n%s", err, stderr)
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if bad := nonJSONLines(out); len(bad) > 0 {
			t.Errorf("%s has %d lines that are not JSON, e.g. %q", name, len(bad), bad[0])
		}
	}
	if !strings.Contains(stdout.String(), `"msg":"mtmd stopped"`) {
		t.Error("no orderly stop after SIGTERM")
	}
}

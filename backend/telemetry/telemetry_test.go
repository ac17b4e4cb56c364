package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/telemetry"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// lockedBuffer collects log output written by server goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log records written so far.
func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// care answers SearchPatients with whatever behave does.
type care struct {
	mtmv1connect.UnimplementedCareServiceHandler
	behave func(ctx context.Context) error
}

func (c *care) SearchPatients(ctx context.Context, _ *connect.Request[mtmv1.SearchPatientsRequest]) (*connect.Response[mtmv1.SearchPatientsResponse], error) {
	if err := c.behave(ctx); err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SearchPatientsResponse{}), nil
}

// inbox streams two heartbeats carrying the request id as the cursor.
type inbox struct {
	mtmv1connect.UnimplementedMessagingServiceHandler
}

func (inbox) WatchInbox(ctx context.Context, _ *connect.Request[mtmv1.WatchInboxRequest], s *connect.ServerStream[mtmv1.WatchInboxResponse]) error {
	for range 2 {
		if err := s.Send(&mtmv1.WatchInboxResponse{Cursor: telemetry.RequestID(ctx)}); err != nil {
			return err
		}
	}
	return nil
}

type fixture struct {
	url    string
	client *http.Client
	logs   *lockedBuffer
	admin  *httptest.Server
}

// start serves the test services behind the telemetry interceptor and a
// deadline clamp of clamp, over HTTP/2 with TLS so that every protocol works.
func start(t *testing.T, behave func(ctx context.Context) error, clamp time.Duration) fixture {
	t.Helper()
	return startWith(t, setup{behave: behave, clamp: clamp})
}

// setup says how startWith builds the server.
type setup struct {
	behave     func(ctx context.Context) error
	clamp      time.Duration
	middleware bool // wrap the mux in Interceptor.Middleware
	readMax    int  // connect.WithReadMaxBytes when > 0
}

func startWith(t *testing.T, s setup) fixture {
	t.Helper()
	behave, clamp := s.behave, s.clamp
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ti, err := telemetry.NewInterceptor(telemetry.Config{
		Logger:       slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:      metrics,
		NewRequestID: func() string { return "generated-id" },
	})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := telemetry.NewDeadlineClamp(clamp, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts := []connect.HandlerOption{connect.WithInterceptors(ti, dc)}
	if s.readMax > 0 {
		opts = append(opts, connect.WithReadMaxBytes(s.readMax))
	}
	mux := http.NewServeMux()
	mux.Handle(mtmv1connect.NewCareServiceHandler(&care{behave: behave}, opts...))
	mux.Handle(mtmv1connect.NewMessagingServiceHandler(inbox{}, opts...))
	var h http.Handler = mux
	if s.middleware {
		h = ti.Middleware(mux)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	admin := httptest.NewServer(telemetry.AdminHandler(reg))
	t.Cleanup(admin.Close)
	return fixture{url: srv.URL, client: srv.Client(), logs: logs, admin: admin}
}

var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// responseRequestID returns the X-Request-Id the caller got back, from the
// response or from the error's metadata.
func responseRequestID(res *connect.Response[mtmv1.SearchPatientsResponse], err error) string {
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return ce.Meta().Get(telemetry.RequestIDHeader)
		}
		return ""
	}
	if ids := res.Header().Values(telemetry.RequestIDHeader); len(ids) != 1 {
		return fmt.Sprintf("%d ids %q", len(ids), ids)
	}
	return res.Header().Get(telemetry.RequestIDHeader)
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		fail     bool
		want     string
	}{
		{name: "sane id is kept", incoming: "abc-DEF_123", want: "abc-DEF_123"},
		{name: "sane id is kept on error", incoming: "trace-42", fail: true, want: "trace-42"},
		{name: "no id gets a fresh one", want: "generated-id"},
		{name: "id with a space is replaced", incoming: "abc def", want: "generated-id"},
		{name: "id with a newline is replaced", incoming: "abc%0Ainjected", want: "generated-id"},
		{name: "64 characters are kept", incoming: strings.Repeat("a", 64), want: strings.Repeat("a", 64)},
		{name: "65 characters are replaced", incoming: strings.Repeat("a", 65), want: "generated-id"},
	}
	for _, p := range protocols {
		for _, tc := range tests {
			for _, mw := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/middleware=%v/%s", p.name, mw, tc.name), func(t *testing.T) {
					var seen atomic.Value
					seen.Store("")
					f := startWith(t, setup{middleware: mw, clamp: time.Minute, behave: func(ctx context.Context) error {
						seen.Store(telemetry.RequestID(ctx))
						telemetry.Logger(ctx).Info("inside handler")
						if tc.fail {
							return connect.NewError(connect.CodeNotFound, errors.New("no such patient"))
						}
						return nil
					}})
					client := mtmv1connect.NewCareServiceClient(f.client, f.url, p.opts...)
					req := connect.NewRequest(&mtmv1.SearchPatientsRequest{})
					if tc.incoming != "" {
						req.Header().Set(telemetry.RequestIDHeader, tc.incoming)
					}
					res, err := client.SearchPatients(context.Background(), req)
					if tc.fail != (err != nil) {
						t.Fatalf("err = %v, want failure %v", err, tc.fail)
					}
					if got := responseRequestID(res, err); got != tc.want {
						t.Errorf("response X-Request-Id = %q, want %q", got, tc.want)
					}
					if got := seen.Load(); got != tc.want {
						t.Errorf("handler saw request id %q, want %q", got, tc.want)
					}
					for _, l := range f.logs.lines(t) {
						if l["request_id"] != tc.want {
							t.Errorf("log line %v has request_id %v, want %q", l["msg"], l["request_id"], tc.want)
						}
						if l["msg"] == "http" {
							t.Errorf("an RPC was also logged as a bare HTTP request: %v", l)
						}
					}
				})
			}
		}
	}
}

func TestOneLogLinePerRPCWithoutBodies(t *testing.T) {
	tests := []struct {
		name      string
		behave    func(context.Context) error
		wantCode  string
		wantLevel string
	}{
		{"success", func(context.Context) error { return nil }, "ok", "INFO"},
		{"caller mistake", func(context.Context) error {
			return connect.NewError(connect.CodeInvalidArgument, errors.New("bad"))
		}, "invalid_argument", "INFO"},
		{"server failure", func(context.Context) error { return errors.New("disk on fire") }, "unknown", "ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, tc.behave, time.Minute)
			client := mtmv1connect.NewCareServiceClient(f.client, f.url, connect.WithGRPC())
			_, _ = client.SearchPatients(context.Background(),
				connect.NewRequest(&mtmv1.SearchPatientsRequest{NamePrefix: "Warfarin-Smith"}))
			lines := f.logs.lines(t)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1:\n%s", len(lines), f.logs)
			}
			l := lines[0]
			want := map[string]any{
				"msg":         "rpc",
				"level":       tc.wantLevel,
				"procedure":   mtmv1connect.CareServiceSearchPatientsProcedure,
				"protocol":    connect.ProtocolGRPC,
				"code":        tc.wantCode,
				"stream_type": "unary",
			}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("log %s = %v, want %v", k, l[k], v)
				}
			}
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("log has no numeric duration_ms: %v", l)
			}
			if s := f.logs.String(); strings.Contains(s, "Warfarin") || strings.Contains(s, "disk on fire") {
				t.Errorf("log leaks request body or error text:\n%s", s)
			}
		})
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	f := start(t, func(context.Context) error { panic("patient Jane Doe") }, time.Minute)
	client := mtmv1connect.NewCareServiceClient(f.client, f.url)
	_, err := client.SearchPatients(context.Background(), connect.NewRequest(&mtmv1.SearchPatientsRequest{}))
	if connect.CodeOf(err) != connect.CodeInternal {
		t.Fatalf("err = %v, want internal", err)
	}
	logs := f.logs.String()
	if strings.Contains(logs, "Jane Doe") {
		t.Errorf("panic value leaked into the log:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"rpc panic"`) || !strings.Contains(logs, `"code":"internal"`) {
		t.Errorf("panic not logged as an internal RPC:\n%s", logs)
	}
}

func TestStreamingHandler(t *testing.T) {
	for _, p := range protocols {
		for _, mw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/middleware=%v", p.name, mw), func(t *testing.T) {
				f := startWith(t, setup{clamp: time.Minute, middleware: mw})
				client := mtmv1connect.NewMessagingServiceClient(f.client, f.url, p.opts...)
				req := connect.NewRequest(&mtmv1.WatchInboxRequest{})
				req.Header().Set(telemetry.RequestIDHeader, "stream-1")
				stream, err := client.WatchInbox(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for stream.Receive() {
					got = append(got, stream.Msg().Cursor)
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if h := stream.ResponseHeader().Get(telemetry.RequestIDHeader); h != "stream-1" {
					t.Errorf("stream X-Request-Id = %q, want stream-1", h)
				}
				if len(got) != 2 || got[0] != "stream-1" {
					t.Errorf("handler saw request ids %q, want stream-1 twice", got)
				}
				if logs := f.logs.String(); !strings.Contains(logs, `"stream_type":"server_stream"`) {
					t.Errorf("stream not logged:\n%s", logs)
				}
			})
		}
	}
}

func TestMiddlewareCoversRequestsNoRPCTakes(t *testing.T) {
	f := startWith(t, setup{clamp: time.Minute, middleware: true, readMax: 64,
		behave: func(context.Context) error { return nil }})
	client := mtmv1connect.NewCareServiceClient(f.client, f.url)

	req := connect.NewRequest(&mtmv1.SearchPatientsRequest{NamePrefix: strings.Repeat("x", 100)})
	req.Header().Set(telemetry.RequestIDHeader, "too-big-1")
	_, err := client.SearchPatients(context.Background(), req)
	if connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Fatalf("oversized request: %v, want resource_exhausted", err)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Meta().Get(telemetry.RequestIDHeader) != "too-big-1" {
		t.Errorf("oversized request's answer lacks its X-Request-Id")
	}

	res, err := f.client.Get(f.url + "/no.such.Service/Method")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || res.Header.Get(telemetry.RequestIDHeader) == "" {
		t.Errorf("unknown path: %s with X-Request-Id %q, want 404 with an id", res.Status, res.Header.Get(telemetry.RequestIDHeader))
	}

	var httpLines []map[string]any
	for _, l := range f.logs.lines(t) {
		if l["msg"] == "rpc" {
			t.Errorf("a request no handler took was logged as an RPC: %v", l)
		}
		if l["msg"] == "http" {
			httpLines = append(httpLines, l)
		}
	}
	if len(httpLines) != 2 {
		t.Fatalf("got %d http log lines, want 2:\n%s", len(httpLines), f.logs)
	}
	if httpLines[0]["request_id"] != "too-big-1" || httpLines[0]["status"] != float64(http.StatusTooManyRequests) {
		t.Errorf("oversized request logged as %v", httpLines[0])
	}
	if httpLines[1]["status"] != float64(http.StatusNotFound) || httpLines[1]["path"] != "/no.such.Service/Method" {
		t.Errorf("unknown path logged as %v", httpLines[1])
	}
	if strings.Contains(f.logs.String(), "xxxxxxxx") {
		t.Error("the oversized body reached the log")
	}
	body := get(t, f.admin.URL+"/metrics")
	for _, want := range []string{
		`mtm_http_non_rpc_requests_total{status="429"} 1`,
		`mtm_http_non_rpc_requests_total{status="404"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `mtm_rpc_requests_total{`) {
		t.Errorf("requests no handler took were counted as RPCs:\n%s", body)
	}
}

func TestMetricsOnAdminHandler(t *testing.T) {
	var fail atomic.Bool
	f := start(t, func(context.Context) error {
		if fail.Load() {
			return connect.NewError(connect.CodeNotFound, errors.New("x"))
		}
		return nil
	}, time.Minute)
	client := mtmv1connect.NewCareServiceClient(f.client, f.url)
	for range 2 {
		_, _ = client.SearchPatients(context.Background(), connect.NewRequest(&mtmv1.SearchPatientsRequest{}))
	}
	fail.Store(true)
	_, _ = client.SearchPatients(context.Background(), connect.NewRequest(&mtmv1.SearchPatientsRequest{}))

	body := get(t, f.admin.URL+"/metrics")
	for _, want := range []string{
		`mtm_rpc_requests_total{code="ok",procedure="/mtm.v1.CareService/SearchPatients"} 2`,
		`mtm_rpc_requests_total{code="not_found",procedure="/mtm.v1.CareService/SearchPatients"} 1`,
		`mtm_rpc_duration_seconds_count{procedure="/mtm.v1.CareService/SearchPatients"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if got := get(t, f.admin.URL+"/healthz"); got != "ok\n" {
		t.Errorf("/healthz = %q, want ok", got)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	return string(b)
}

func TestDeadlineClamp(t *testing.T) {
	const clamp = 2 * time.Second
	tests := []struct {
		name    string
		timeout time.Duration // 0: the caller sets no deadline
		wantMin time.Duration
		wantMax time.Duration
	}{
		{"no deadline gets the maximum", 0, clamp - time.Second, clamp},
		{"longer deadline is clamped", time.Hour, clamp - time.Second, clamp},
		{"shorter deadline is kept", 500 * time.Millisecond, 0, 500 * time.Millisecond},
	}
	for _, p := range protocols {
		for _, tc := range tests {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				var left atomic.Int64
				f := start(t, func(ctx context.Context) error {
					d, ok := ctx.Deadline()
					if !ok {
						return connect.NewError(connect.CodeInternal, errors.New("no deadline"))
					}
					left.Store(int64(time.Until(d)))
					return nil
				}, clamp)
				ctx := context.Background()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				client := mtmv1connect.NewCareServiceClient(f.client, f.url, p.opts...)
				if _, err := client.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{})); err != nil {
					t.Fatal(err)
				}
				remaining := time.Duration(left.Load())
				if remaining <= tc.wantMin || remaining > tc.wantMax {
					t.Errorf("handler had %s left, want in (%s, %s]", remaining, tc.wantMin, tc.wantMax)
				}
			})
		}
	}
}

func TestDeadlineClampEndsSlowCall(t *testing.T) {
	f := start(t, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, 100*time.Millisecond)
	client := mtmv1connect.NewCareServiceClient(f.client, f.url)
	startAt := time.Now()
	_, err := client.SearchPatients(context.Background(), connect.NewRequest(&mtmv1.SearchPatientsRequest{}))
	if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Fatalf("err = %v, want deadline_exceeded", err)
	}
	if took := time.Since(startAt); took > 5*time.Second {
		t.Errorf("slow call took %s despite a 100ms clamp", took)
	}
}

func TestConstructorsNameMissingDependencies(t *testing.T) {
	_, err := telemetry.NewInterceptor(telemetry.Config{})
	if err == nil || !strings.Contains(err.Error(), "missing logger") || !strings.Contains(err.Error(), "missing metrics") {
		t.Errorf("NewInterceptor(empty) = %v, want both missing dependencies named", err)
	}
	if _, err := telemetry.NewMetrics(nil); err == nil {
		t.Error("NewMetrics(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := telemetry.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := telemetry.NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
	if _, err := telemetry.NewDeadlineClamp(0, 0); err == nil {
		t.Error("NewDeadlineClamp(0, 0) succeeded")
	}
}

func TestLoggerOutsideRPC(t *testing.T) {
	ctx := context.Background()
	if telemetry.Logger(ctx) == nil {
		t.Fatal("Logger of a bare context is nil")
	}
	if id := telemetry.RequestID(ctx); id != "" {
		t.Errorf("RequestID of a bare context = %q", id)
	}
	var buf lockedBuffer
	ctx = telemetry.WithLogger(ctx, "job-7", slog.New(slog.NewJSONHandler(&buf, nil)))
	telemetry.Logger(ctx).Info("tick")
	if !strings.Contains(buf.String(), `"request_id":"job-7"`) || telemetry.RequestID(ctx) != "job-7" {
		t.Errorf("WithLogger did not carry the id: %s", buf.String())
	}
}

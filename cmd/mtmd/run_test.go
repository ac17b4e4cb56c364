package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/demo"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// syncBuffer collects what the server writes to stdout from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is one mtmd started by startServer.
type running struct {
	api, admin string       // base URLs
	handler    http.Handler // the API's, to call without the network
	out        output
	stop       func() error // cancels the context and returns run's result
}

// output is where a server started by startServer writes: its logs and the
// demo instructions.
type output interface {
	io.Writer
	String() string
}

// startServer runs mtmd on free loopback ports with a fresh data dir plus
// extra flags, and waits until it serves.
func startServer(t testing.TB, dataDir string, extra ...string) running {
	t.Helper()
	return startServerTo(t, &syncBuffer{}, dataDir, extra...)
}

// startServerTo is startServer writing to out.
func startServerTo(t testing.TB, out output, dataDir string, extra ...string) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	var handler http.Handler
	done := make(chan error, 1)
	args := append([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json", "--shutdown-grace", "0s"}, extra...)
	go func() {
		done <- runWith(ctx, args, func(string) string { return "" }, out, hooks{
			ready:      func(api, admin string) { ready <- [2]string{api, admin} },
			apiHandler: func(h http.Handler) { handler = h },
		})
	}()
	var r running
	select {
	case addrs := <-ready:
		r = running{api: "http://" + addrs[0], admin: "http://" + addrs[1], handler: handler, out: out}
	case err := <-done:
		cancel()
		t.Fatalf("mtmd did not start: %v\n%s", err, out)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("mtmd did not start within 20s:\n%s", out)
	}
	var once sync.Once
	var result error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(20 * time.Second):
				result = errors.New("run did not return within 20s of cancellation")
			}
		})
		return result
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// h2cClient speaks HTTP/2 without TLS, as gRPC clients do against a
// plaintext port.
func h2cClient() *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

// http1Client speaks only HTTP/1.1.
func http1Client() *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr}
}

func TestServerEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, "--max-request-bytes", "4096")
	ctx := context.Background()

	t.Run("health is SERVING over gRPC", func(t *testing.T) {
		health := grpchealth.NewClient(h2cClient(), srv.api, connect.WithGRPC())
		for _, service := range append([]string{""}, api.ServiceNames...) {
			res, err := health.Check(ctx, &grpchealth.CheckRequest{Service: service})
			if err != nil {
				t.Fatalf("Check(%q): %v", service, err)
			}
			if res.Status != grpchealth.StatusServing {
				t.Errorf("Check(%q) = %v, want SERVING", service, res.Status)
			}
		}
	})

	t.Run("reflection lists the four mtm.v1 services", func(t *testing.T) {
		stream := grpcreflect.NewClient(h2cClient(), srv.api).NewStream(ctx)
		defer stream.Close()
		names, err := stream.ListServices()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range names {
			if strings.HasPrefix(string(n), "mtm.v1.") {
				got = append(got, string(n))
			}
		}
		slices.Sort(got)
		want := []string{"mtm.v1.AuthService", "mtm.v1.CareService", "mtm.v1.MessagingService", "mtm.v1.PatientService"}
		if !slices.Equal(got, want) {
			t.Errorf("reflection lists %q, want %q", got, want)
		}
		files, err := stream.FileContainingSymbol("mtm.v1.CareService")
		if err != nil || len(files) == 0 {
			t.Errorf("reflection cannot describe mtm.v1.CareService: %v", err)
		}
	})

	t.Run("JWKS is served", func(t *testing.T) {
		res, err := http.Get(srv.api + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var jwks struct {
			Keys []struct{ Kid, Kty, Alg string }
		}
		if err := json.NewDecoder(res.Body).Decode(&jwks); err != nil {
			t.Fatal(err)
		}
		if res.Header.Get("X-Request-Id") == "" {
			t.Error("JWKS answer lacks X-Request-Id")
		}
		if res.StatusCode != http.StatusOK || len(jwks.Keys) == 0 || jwks.Keys[0].Kid == "" || jwks.Keys[0].Alg != "ES256" {
			t.Errorf("JWKS = %d %+v, want one ES256 key with a kid", res.StatusCode, jwks)
		}
	})

	t.Run("every protocol reaches the services", func(t *testing.T) {
		clients := []struct {
			name string
			c    mtmv1connect.AuthServiceClient
		}{
			{"connect over HTTP/1.1", mtmv1connect.NewAuthServiceClient(http1Client(), srv.api)},
			{"connect JSON over HTTP/1.1", mtmv1connect.NewAuthServiceClient(http1Client(), srv.api, connect.WithProtoJSON())},
			{"grpc over h2c", mtmv1connect.NewAuthServiceClient(h2cClient(), srv.api, connect.WithGRPC())},
			{"grpc-web over HTTP/1.1", mtmv1connect.NewAuthServiceClient(http1Client(), srv.api, connect.WithGRPCWeb())},
		}
		for _, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				req := connect.NewRequest(&mtmv1.LoginRequest{Email: "nobody@example.org", Password: "wrong password"})
				_, err := c.c.Login(ctx, req)
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("Login with unknown account: %v, want unauthenticated", err)
				}
				var ce *connect.Error
				if errors.As(err, &ce) && ce.Meta().Get("X-Request-Id") == "" {
					t.Error("error response carries no X-Request-Id")
				}
			})
		}
	})

	t.Run("bad input is invalid_argument before auth-free handlers run", func(t *testing.T) {
		c := mtmv1connect.NewAuthServiceClient(http1Client(), srv.api)
		_, err := c.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "not-an-email", Password: "x"}))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("Login with malformed e-mail: %v, want invalid_argument", err)
		}
	})

	t.Run("protected procedure needs a token", func(t *testing.T) {
		c := mtmv1connect.NewCareServiceClient(h2cClient(), srv.api, connect.WithGRPC())
		_, err := c.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("SearchPatients without token: %v, want unauthenticated", err)
		}
	})

	t.Run("oversized request is refused", func(t *testing.T) {
		c := mtmv1connect.NewAuthServiceClient(http1Client(), srv.api)
		_, err := c.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "a@example.org", Password: strings.Repeat("x", 8000)}))
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Errorf("8 KB request with a 4 KiB limit: %v, want resource_exhausted", err)
		}
	})

	t.Run("metrics on the admin port count the calls", func(t *testing.T) {
		body := httpGet(t, srv.admin+"/metrics")
		for _, want := range []string{
			`mtm_rpc_requests_total{code="ok",procedure="/grpc.health.v1.Health/Check"} 5`,
			`mtm_rpc_requests_total{code="unauthenticated",procedure="/mtm.v1.AuthService/Login"} 4`,
			`mtm_rpc_duration_seconds_bucket{procedure="/mtm.v1.CareService/SearchPatients",le="+Inf"} 1`,
			`mtm_http_non_rpc_requests_total{status="429"} 1`,
			`mtm_http_non_rpc_requests_total{status="200"} 1`,
			"go_goroutines",
			"mtm_reminder_lease_takeovers_total 0", "mtm_reminder_settle_retries_total 0",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if got := httpGet(t, srv.admin+"/healthz"); got != "ok\n" {
			t.Errorf("/healthz = %q", got)
		}
	})

	t.Run("a second mtmd on the same data dir is refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err := runWith(ctx, []string{"--addr", "127.0.0.1:0", "--admin-addr", "", "--data-dir", dataDir},
			func(string) string { return "" }, io.Discard, hooks{})
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("second mtmd: %v, want a data-dir-in-use error", err)
		}
	})

	if err := srv.stop(); err != nil {
		t.Fatalf("run after cancel = %v, want nil", err)
	}
	for _, p := range []string{"mtm.db", "keys"} {
		if _, err := os.Stat(filepath.Join(dataDir, p)); err != nil {
			t.Errorf("data dir lacks %s: %v", p, err)
		}
	}
	logs := srv.out.String()
	for _, want := range []string{`"msg":"mtmd serving"`, `"msg":"mtmd stopped"`, `"request_id":`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if strings.Contains(logs, "wrong password") || strings.Contains(logs, "nobody@example.org") {
		t.Error("logs contain request bodies")
	}
}

func TestDemoSignIn(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--demo", "--admin-addr", "")
	if !strings.Contains(srv.out.String(), srv.api+"/mtm.v1.AuthService/ActivatePatient") {
		t.Errorf("demo instructions do not point at the server:\n%s", srv.out)
	}
	ctx := context.Background()
	authc := mtmv1connect.NewAuthServiceClient(http1Client(), srv.api)
	login, err := authc.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
	if err != nil {
		t.Fatalf("demo pharmacist cannot sign in: %v", err)
	}
	care := mtmv1connect.NewCareServiceClient(h2cClient(), srv.api, connect.WithGRPC())
	req := connect.NewRequest(&mtmv1.SearchPatientsRequest{})
	req.Header().Set("Authorization", "Bearer "+login.Msg.GetTokens().GetAccessToken())
	res, err := care.SearchPatients(ctx, req)
	if err != nil {
		t.Fatalf("SearchPatients as the demo pharmacist: %v", err)
	}
	var ids []string
	for _, p := range res.Msg.GetPatients() {
		ids = append(ids, p.GetId())
	}
	if !slices.Contains(ids, demo.PatientID) {
		t.Errorf("demo pharmacist sees patients %q, want %s among them", ids, demo.PatientID)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestRunRefusesBadStart(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"every configuration problem at once",
			[]string{"--addr", "nowhere", "--log-format", "xml", "--access-ttl", "1s"},
			[]string{"--addr/MTM_ADDR", "--log-format/MTM_LOG_FORMAT", "--access-ttl/MTM_ACCESS_TTL"}},
		{"redis unreachable", []string{"--redis-url", "redis://127.0.0.1:1"}, []string{"unavailable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir()}, tc.args...)
			err := run(context.Background(), args, func(string) string { return "" }, io.Discard)
			if err == nil {
				t.Fatal("run started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out); err != nil {
		t.Errorf("--help: %v", err)
	}
	if !strings.Contains(out.String(), "--max-rpc-timeout") || !strings.Contains(out.String(), "MTM_MAX_RPC_TIMEOUT") {
		t.Errorf("--help does not list flags with their variables:\n%s", out.String())
	}
}

func httpGet(t *testing.T, url string) string {
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

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestCORS: a browser on an allowed origin gets its preflight answered and
// may read the answers of Connect and gRPC-Web calls, including the
// headers an app needs (Retry-After, the gRPC status); any other origin,
// and every origin when --cors-origins is unset, gets no CORS headers.
func TestCORS(t *testing.T) {
	const app = "https://app.example.org"
	srv := startServer(t, t.TempDir(), "--cors-origins", app+", http://localhost:8081")
	plain := startServer(t, t.TempDir())
	procedure := srv.api + mtmv1connect.AuthServiceLoginProcedure

	preflight := func(t *testing.T, url, origin, headers string) *http.Response {
		t.Helper()
		r, _ := http.NewRequest(http.MethodOptions, url, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", headers)
		res, err := http1Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	t.Run("preflights from an allowed origin", func(t *testing.T) {
		for _, c := range []struct{ protocol, headers string }{
			{"connect", "authorization,connect-protocol-version,connect-timeout-ms,content-type"},
			{"grpc-web", "authorization,content-type,grpc-timeout,x-grpc-web,x-user-agent"},
		} {
			res := preflight(t, procedure, app, c.headers)
			if res.StatusCode/100 != 2 {
				t.Fatalf("%s preflight: status %d, want 2xx", c.protocol, res.StatusCode)
			}
			h := res.Header
			if h.Get("Access-Control-Allow-Origin") != app || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
				t.Fatalf("%s preflight headers = %v", c.protocol, h)
			}
			allowed := strings.ToLower(h.Get("Access-Control-Allow-Headers"))
			for _, want := range strings.Split(c.headers, ",") {
				if !strings.Contains(allowed, want) {
					t.Errorf("%s preflight allows headers %q, missing %q", c.protocol, allowed, want)
				}
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("credentials allowed: tokens travel in Authorization, never cookies")
			}
		}
	})
	t.Run("a call from an allowed origin exposes Retry-After and the gRPC status", func(t *testing.T) {
		r, _ := http.NewRequest(http.MethodPost, procedure, strings.NewReader(`{"email":"nobody@example.org","password":"wrong password 1"}`))
		r.Header.Set("Origin", "http://localhost:8081")
		r.Header.Set("Content-Type", "application/json")
		res, err := http1Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get("Access-Control-Allow-Origin") != "http://localhost:8081" {
			t.Fatalf("allow-origin = %q", res.Header.Get("Access-Control-Allow-Origin"))
		}
		exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
		for _, want := range []string{"retry-after", "grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id"} {
			if !strings.Contains(exposed, want) {
				t.Errorf("exposed headers %q lack %q", exposed, want)
			}
		}
	})
	t.Run("other origins get no CORS headers", func(t *testing.T) {
		for _, c := range []struct{ name, url, origin string }{
			{"disallowed origin", procedure, "https://evil.example.com"},
			{"look-alike origin", procedure, "https://app.example.org.evil.example.com"},
			{"server without --cors-origins", plain.api + mtmv1connect.AuthServiceLoginProcedure, app},
		} {
			res := preflight(t, c.url, c.origin, "content-type")
			for k := range res.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s: preflight answered %s: %q", c.name, k, res.Header.Get(k))
				}
			}
		}
	})
}

// testCA is a certificate authority a test makes to issue the server's
// certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mtmd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for 127.0.0.1 with serial to certFile and its
// key to keyFile.
func (ca testCA) issue(t *testing.T, serial int64, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "mtmd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	writePEM(t, certFile, "CERTIFICATE", der)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// servedSerial opens a new TLS connection to addr and returns the serial
// of the certificate the server presents and the protocol ALPN chose.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool, protos ...string) (int64, string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: protos})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0].SerialNumber.Int64(), st.NegotiatedProtocol
}

// TestTLS: with --tls-cert/--tls-key the API port speaks TLS, HTTP/2 (gRPC
// and Connect) and HTTP/1.1 by ALPN, and a renewed certificate written
// over the files is served to new connections without a restart.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t)
	ca.issue(t, 100, certFile, keyFile)
	srv := startServer(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)
	base := strings.Replace(srv.api, "http://", "https://", 1)
	addr := strings.TrimPrefix(srv.api, "http://")
	ctx := context.Background()

	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, Protocols: new(http.Protocols)}
	h2.Protocols.SetHTTP2(true)
	t.Cleanup(h2.CloseIdleConnections)
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, Protocols: new(http.Protocols)}
	h1.Protocols.SetHTTP1(true)
	t.Cleanup(h1.CloseIdleConnections)

	t.Run("gRPC over TLS and HTTP/2", func(t *testing.T) {
		health := grpchealth.NewClient(&http.Client{Transport: h2}, base, connect.WithGRPC())
		res, err := health.Check(ctx, &grpchealth.CheckRequest{})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Fatalf("gRPC health over TLS: %v %v", res, err)
		}
	})
	t.Run("Connect over TLS, HTTP/2 and HTTP/1.1", func(t *testing.T) {
		for _, c := range []struct {
			tr    *http.Transport
			proto string
		}{{h2, "HTTP/2.0"}, {h1, "HTTP/1.1"}} {
			var proto string
			client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				res, err := c.tr.RoundTrip(r)
				if err == nil {
					proto = res.Proto
				}
				return res, err
			})}
			auth := mtmv1connect.NewAuthServiceClient(client, base)
			_, err := auth.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "nobody@example.org", Password: "wrong password 1"}))
			if connect.CodeOf(err) != connect.CodeUnauthenticated {
				t.Fatalf("Login over %s: %v, want unauthenticated", c.proto, err)
			}
			if proto != c.proto {
				t.Fatalf("answered over %q, want %q", proto, c.proto)
			}
		}
	})
	t.Run("ALPN offers h2 and http/1.1", func(t *testing.T) {
		for _, p := range []string{"h2", "http/1.1"} {
			if _, got := servedSerial(t, addr, ca.pool, p); got != p {
				t.Errorf("client offering only %s negotiated %q", p, got)
			}
		}
	})
	t.Run("a renewed certificate reaches new connections", func(t *testing.T) {
		if serial, _ := servedSerial(t, addr, ca.pool); serial != 100 {
			t.Fatalf("serving serial %d, want 100", serial)
		}
		ca.issue(t, 101, certFile, keyFile)
		deadline := time.Now().Add(15 * time.Second)
		for {
			serial, _ := servedSerial(t, addr, ca.pool)
			if serial == 101 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still serving serial %d 15s after the renewal", serial)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(srv.out.String(), "TLS certificate reloaded") {
			t.Errorf("no log line for the reload:\n%s", srv.out)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCertReloaderKeepsServingThroughAHalfWrittenRenewal: a certificate
// renewed before its key (the files do not match for a moment) keeps the
// old pair in service; once both are written the new one is served.
func TestCertReloaderKeepsServingThroughAHalfWrittenRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := newTestCA(t)
	ca.issue(t, 1, certFile, keyFile)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.Int64()
	}
	// The renewal's certificate lands, its key not yet.
	next := t.TempDir()
	ca.issue(t, 2, filepath.Join(next, "tls.crt"), filepath.Join(next, "tls.key"))
	copyFile(t, filepath.Join(next, "tls.crt"), certFile)
	now = now.Add(certCheckInterval)
	if got := serial(); got != 1 {
		t.Fatalf("half-written renewal: serving %d, want the old certificate 1", got)
	}
	copyFile(t, filepath.Join(next, "tls.key"), keyFile)
	if got := serial(); got != 1 {
		t.Fatalf("checked again within %s: serving %d, want 1 until the next check", certCheckInterval, got)
	}
	now = now.Add(certCheckInterval)
	if got := serial(); got != 2 {
		t.Fatalf("after the whole renewal: serving %d, want 2", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEdgeConfigListsEveryProblem: CORS and TLS mistakes are reported
// together, each naming its flag.
func TestEdgeConfigListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	newTestCA(t).issue(t, 1, certFile, keyFile)
	other := t.TempDir()
	newTestCA(t).issue(t, 2, filepath.Join(other, "tls.crt"), filepath.Join(other, "tls.key"))
	tests := []struct {
		name string
		args []string
		want []string // substrings, one per expected problem
	}{
		{"valid TLS and origins", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--cors-origins", "https://app.example.org,http://localhost:8081, *"}, nil},
		{"cert without key", []string{"--tls-cert", certFile}, []string{"--tls-cert/MTM_TLS_CERT is set without --tls-key"}},
		{"key without cert", []string{"--tls-key", keyFile}, []string{"--tls-key/MTM_TLS_KEY is set without --tls-cert"}},
		{"unreadable files", []string{"--tls-cert", filepath.Join(dir, "missing.crt"), "--tls-key", filepath.Join(dir, "missing.key")},
			[]string{`--tls-cert/MTM_TLS_CERT "` + filepath.Join(dir, "missing.crt") + `": cannot read`, `--tls-key/MTM_TLS_KEY "` + filepath.Join(dir, "missing.key") + `": cannot read`}},
		{"key of another certificate", []string{"--tls-cert", certFile, "--tls-key", filepath.Join(other, "tls.key")}, []string{"not a PEM certificate and its private key"}},
		{"bad origins", []string{"--cors-origins", "app.example.org,ftp://x.example.org,https://x.example.org/path,https://*.example.org"},
			[]string{`"app.example.org"`, `"ftp://x.example.org": scheme`, `"https://x.example.org/path"`, `"https://*.example.org": wildcards`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %d problems", len(tc.want))
			}
			lines := strings.Split(err.Error(), "\n")[1:]
			if len(lines) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, w) }) {
					t.Errorf("no problem mentions %q:\n%v", w, err)
				}
			}
		})
	}
}

package api_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"

	"errors"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/telemetry"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	testIssuer   = "https://mtm.test"
	testAudience = "mtm-api"
	maxBody      = 64 << 10
)

// env is one running API server over a fresh embedded store.
type env struct {
	t       testing.TB
	store   store.Store
	clock   *clock
	keys    *auth.KeySet
	tokens  *auth.Tokens
	srv     *httptest.Server
	opts    []connect.ClientOption
	archive *memorySink
	keyDir  string
	logs    *logBuffer
}

// protocols are the wire protocols every handler test runs over.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
}

// forEachProtocol runs fn over each protocol on the embedded store.
func forEachProtocol(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			e.opts = p.opts
			fn(t, e)
		})
	}
}

// forEachBackendAndProtocol runs fn over each protocol on the embedded
// store and on a private Redis server.
func forEachBackendAndProtocol(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	forEachProtocol(t, fn)
	for _, p := range protocols {
		t.Run("redis/"+p.name, func(t *testing.T) {
			e := newEnvOn(t, redisStore(t))
			e.opts = p.opts
			fn(t, e)
		})
	}
}

func redisStore(t testing.TB) store.Store {
	t.Helper()
	tt, ok := t.(*testing.T)
	if !ok {
		t.Fatal("redis store needs a *testing.T")
	}
	addr, _ := redistest.StartServer(tt)
	st, err := redisstore.Open(context.Background(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: testKEK(t)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newEnv starts a server on a fresh embedded store.
func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, boltStore(t))
}

// boltStore opens a fresh embedded store.
func boltStore(t testing.TB) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newEnvOn starts a server on st, which it closes at cleanup.
func newEnvOn(t testing.TB, st store.Store) *env {
	t.Helper()
	return newEnvWith(t, st, envOptions{})
}

// newEnvBehind starts a server on st that takes the client address from
// X-Forwarded-For when the peer is in trusted.
func newEnvBehind(t testing.TB, st store.Store, trusted []netip.Prefix) *env {
	t.Helper()
	return newEnvWith(t, st, envOptions{trusted: trusted})
}

// envOptions tunes a test server.
type envOptions struct {
	// refusalLimit is the per-caller refusal budget (audit.RefusalLimit);
	// 0: so high that the access matrix, which is refused thousands of
	// times by a handful of callers, never reaches it.
	refusalLimit int
	// auditWindow is the per-patient window (audit.NewRecorder); 0: the default.
	auditWindow int
	// trusted are the proxies whose X-Forwarded-For names the client, as
	// mtmd's --trusted-proxies (none: the client is always the peer).
	trusted []netip.Prefix
	// readMax is the largest request read (connect.WithReadMaxBytes);
	// 0: maxBody.
	readMax int
}

// newEnvReadMax starts a server on st that reads requests of up to
// readMax bytes.
func newEnvReadMax(t testing.TB, st store.Store, readMax int) *env {
	t.Helper()
	return newEnvWith(t, st, envOptions{readMax: readMax})
}

// newEnvWith starts a server on st tuned by o, and closes st at cleanup.
func newEnvWith(t testing.TB, st store.Store, o envOptions) *env {
	t.Helper()
	if o.refusalLimit == 0 {
		o.refusalLimit = 1 << 30
	}
	if o.readMax == 0 {
		o.readMax = maxBody
	}
	dir := t.TempDir()
	t.Cleanup(func() { st.Close() })
	clk := &clock{now: time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)}
	keyDir := filepath.Join(dir, "keys")
	keys, err := auth.LoadOrCreateKeySet(keyDir, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	sink := &memorySink{}
	rec, err := audit.NewRecorder(st, sink, o.auditWindow, clk.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.LimitRefusals(audit.RefusalLimit{Throttle: st, Limit: o.refusalLimit}); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	metrics, err := telemetry.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tel, err := telemetry.NewInterceptor(telemetry.Config{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	resolver, err := clientaddr.NewResolver(o.trusted, clientaddr.XForwardedFor)
	if err != nil {
		t.Fatal(err)
	}
	check, err := api.NewRequestCheck()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	opts := []connect.HandlerOption{
		connect.WithInterceptors(tel, auth.NewInterceptor(tokens, api.PublicProcedures()), check, audit.NewInterceptor(rec)),
		connect.WithReadMaxBytes(o.readMax),
	}
	err = api.Register(mux, api.Config{Store: st, Tokens: tokens, Logger: slog.New(slog.DiscardHandler), Now: clk.Now}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.RegisterBench(mux, slog.New(slog.DiscardHandler), opts...); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(resolver.Middleware(tel.Middleware(mux)))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &env{t: t, store: st, clock: clk, keys: keys, tokens: tokens, srv: srv, archive: sink, keyDir: keyDir, logs: logs}
}

// logBuffer collects a test server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// memorySink is the audit archive of a test server.
type memorySink struct {
	mu     sync.Mutex
	events []store.AuditEvent
}

func (m *memorySink) Write(_ context.Context, ev store.AuditEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	return nil
}
func (m *memorySink) Close() error { return nil }
func (m *memorySink) all() []store.AuditEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]store.AuditEvent(nil), m.events...)
}

// bearer adds an access token to every call of a client.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if b != "" {
			req.Header().Set("Authorization", "Bearer "+string(b))
		}
		return next(ctx, req)
	}
}
func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, s connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, s)
		if b != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		}
		return conn
	}
}
func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (e *env) clientOpts(token string) []connect.ClientOption {
	return append([]connect.ClientOption{connect.WithInterceptors(bearer(token))}, e.opts...)
}

func (e *env) authClient() mtmv1connect.AuthServiceClient {
	return mtmv1connect.NewAuthServiceClient(e.srv.Client(), e.srv.URL, e.opts...)
}
func (e *env) patientClient(token string) mtmv1connect.PatientServiceClient {
	return mtmv1connect.NewPatientServiceClient(e.srv.Client(), e.srv.URL, e.clientOpts(token)...)
}
func (e *env) careClient(token string) mtmv1connect.CareServiceClient {
	return mtmv1connect.NewCareServiceClient(e.srv.Client(), e.srv.URL, e.clientOpts(token)...)
}

// pharmacy creates a pharmacy with one admin pharmacist and returns the
// pharmacist's access token.
func (e *env) pharmacy(id, email string) string {
	e.t.Helper()
	ctx := context.Background()
	if err := e.store.CreatePharmacy(ctx, store.Pharmacy{ID: id, Name: id, CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	hash, err := auth.HashPassword("correct horse battery")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateAccount(ctx, store.Account{ID: "ac_" + id, Email: email, DisplayName: "RPh " + id, PasswordHash: hash,
		Role: store.RolePharmacyAdmin, PharmacyID: id, CreatedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	res, err := e.authClient().Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: email, Password: "correct horse battery"}))
	if err != nil {
		e.t.Fatalf("login %s: %v", email, err)
	}
	return res.Msg.GetTokens().GetAccessToken()
}

// enrolled is a patient enrolled and activated through the API.
type enrolled struct {
	id      string
	token   string
	refresh string
}

// enroll enrolls a patient with the pharmacist's token and activates them.
func (e *env) enroll(pharmacistToken, given string) enrolled {
	e.t.Helper()
	ctx := context.Background()
	res, err := e.careClient(pharmacistToken).EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{
		GivenName: given, FamilyName: "Tester", DateOfBirth: "1950-06-01", TimeZone: "America/Chicago"}))
	if err != nil {
		e.t.Fatalf("enroll: %v", err)
	}
	act, err := e.authClient().ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{
		ActivationCode: res.Msg.GetActivationCode(), DateOfBirth: "1950-06-01", DeviceName: "test phone"}))
	if err != nil {
		e.t.Fatalf("activate: %v", err)
	}
	return enrolled{id: res.Msg.GetPatient().GetId(), token: act.Msg.GetTokens().GetAccessToken(), refresh: act.Msg.GetTokens().GetRefreshToken()}
}

// wantCode fails the test unless err is a Connect error with code.
func wantCode(t *testing.T, err error, code connect.Code) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v, want code %v", err, code)
	}
	if ce.Code() != code {
		t.Fatalf("got code %v (%s), want %v", ce.Code(), ce.Message(), code)
	}
	return ce
}

// violatedFields returns the field paths named in a validation error.
func violatedFields(t *testing.T, ce *connect.Error) []string {
	t.Helper()
	var out []string
	for _, d := range ce.Details() {
		msg, err := d.Value()
		if err != nil {
			continue
		}
		if v, ok := msg.(*validate.Violations); ok {
			for _, viol := range v.GetViolations() {
				path := ""
				for i, el := range viol.GetField().GetElements() {
					if i > 0 {
						path += "."
					}
					path += el.GetFieldName()
				}
				out = append(out, path)
			}
		}
	}
	return out
}

var _ = io.Discard

// caregiverOf is a caregiver signed up and holding a grant for a patient.
type caregiverOf struct {
	id, token, grant string
}

// caregiver has the patient invite a caregiver with scopes and signs the
// caregiver up with the invite code.
func (e *env) caregiver(pt enrolled, email string, scopes []mtmv1.CaregiverScope) caregiverOf {
	e.t.Helper()
	ctx := context.Background()
	inv, err := e.patientClient(pt.token).InviteCaregiver(ctx, connect.NewRequest(&mtmv1.InviteCaregiverRequest{PatientId: pt.id, Scopes: scopes}))
	if err != nil {
		e.t.Fatalf("invite: %v", err)
	}
	su, err := e.authClient().SignUpCaregiver(ctx, connect.NewRequest(&mtmv1.SignUpCaregiverRequest{Email: email, Password: "caregiver password 1",
		DisplayName: "CG " + email, InviteCode: inv.Msg.GetInviteCode()}))
	if err != nil {
		e.t.Fatalf("sign up %s: %v", email, err)
	}
	if su.Msg.GetPatientId() != pt.id || su.Msg.GetGrantId() == "" {
		e.t.Fatalf("sign up %s: patient %q grant %q, want %q and a grant", email, su.Msg.GetPatientId(), su.Msg.GetGrantId(), pt.id)
	}
	return caregiverOf{id: su.Msg.GetAccountId(), token: su.Msg.GetTokens().GetAccessToken(), grant: su.Msg.GetGrantId()}
}

// login signs an account in and returns its access token.
func (e *env) login(email, password string) string {
	e.t.Helper()
	res, err := e.authClient().Login(context.Background(), connect.NewRequest(&mtmv1.LoginRequest{Email: email, Password: password}))
	if err != nil {
		e.t.Fatalf("login %s: %v", email, err)
	}
	return res.Msg.GetTokens().GetAccessToken()
}

// forge signs claims with the server's own current signing key, as the
// server would, so that a test can vary one claim at a time.
func (e *env) forge(claims map[string]any) string {
	e.t.Helper()
	files, err := filepath.Glob(filepath.Join(e.keyDir, "*.pem"))
	if err != nil || len(files) == 0 {
		e.t.Fatalf("no key files in %s: %v", e.keyDir, err)
	}
	slices.Sort(files)
	path := files[len(files)-1]
	raw, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		e.t.Fatal(err)
	}
	kid := strings.TrimSuffix(filepath.Base(path), ".pem")
	_, kid, _ = strings.Cut(kid, "_") // "<creation time>_<kid>"; the kid itself may hold '_'
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// jwks returns the server's published JWKS document.
func (e *env) jwks() []byte {
	w := httptest.NewRecorder()
	e.tokens.JWKSHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	return w.Body.Bytes()
}

// testKEK is a fresh key-encryption key for a Redis store (bolt creates
// its own file beside the data).
func testKEK(t testing.TB) tink.AEAD {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	kek, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

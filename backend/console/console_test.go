package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/console"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/backend/telemetry"
)

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

const password = "a long pharmacist password"

// env is the API and the console as mtmd assembles them (interceptors:
// telemetry, auth, audit, request check), over bbolt, with a test clock.
type env struct {
	t     *testing.T
	url   string
	store store.Store
	clock *clock
	// archive is the audit archive's lines.
	archive *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "mtm.db"), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{now: time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)}
	keys, err := auth.LoadOrCreateKeySet(filepath.Join(dir, "keys"), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: "https://mtm.test", Audience: "mtm-api", AccessTTL: 15 * time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	archive := &syncBuffer{}
	rec, err := audit.NewRecorder(st, audit.NewWriterSink(archive), 100, clk.Now, logger)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := telemetry.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tel, err := telemetry.NewInterceptor(telemetry.Config{Logger: logger, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	check, err := api.NewRequestCheck()
	if err != nil {
		t.Fatal(err)
	}
	// The test's browsers come through a "proxy" on loopback that names
	// the client in X-Forwarded-For.
	resolver, err := clientaddr.NewResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, clientaddr.XForwardedFor)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := api.Register(mux, api.Config{Store: st, Tokens: tokens, Logger: logger, Now: clk.Now},
		connect.WithInterceptors(tel, auth.NewInterceptor(tokens, api.PublicProcedures()), audit.NewInterceptor(rec), check)); err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{API: tel.Middleware(mux), Store: st, Logger: logger, Now: clk.Now, IdleTimeout: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { con.Close() })
	mux.Handle("/console/", con)
	srv := httptest.NewServer(resolver.Middleware(tel.Middleware(mux)))
	t.Cleanup(srv.Close)
	for _, email := range []string{"rph@a.test"} {
		if _, _, err := bootstrap.CreatePharmacy(context.Background(), st, clk.Now(), "Main Street Pharmacy", email, password, "Ana Ortiz"); err != nil {
			t.Fatal(err)
		}
	}
	return &env{t: t, url: srv.URL, store: st, clock: clk, archive: archive}
}

// browser is a cookie jar that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
	e *env
	// from, when set, is the client address the proxy names.
	from string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.from != "" {
		req.Header.Set("X-Forwarded-For", b.from)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	return res, string(page)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func token(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

func (b *browser) cookie() string {
	u, _ := url.Parse(b.e.url + "/console/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "mtm_console" {
			return c.Value
		}
	}
	return ""
}

// signIn signs in with the password and returns the inbox's page.
func (b *browser) signIn(email, pw string) (*http.Response, string) {
	b.t.Helper()
	_, page := b.do("GET", "/console/signin", nil)
	return b.do("POST", "/console/signin", url.Values{"csrf": {token(b.t, page)}, "email": {email}, "password": {pw}})
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, page := b.do("GET", "/console/signin", nil)
	for _, tc := range []struct {
		method, path string
		form         url.Values
		page         bool
	}{
		{"GET", "/console/signin", nil, true},
		{"GET", "/console/inbox", nil, true},
		{"GET", "/console/no-such-page", nil, true},
		{"POST", "/console/signin", url.Values{"email": {"x@y.test"}}, true},
		{"POST", "/console/signin", url.Values{"csrf": {token(t, page)}, "email": {"rph@a.test"}, "password": {"wrong"}}, true},
		{"GET", "/console/static/console.css", nil, false},
		{"GET", "/console/static/console.js", nil, false},
	} {
		res, _ := b.do(tc.method, tc.path, tc.form)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s: CSP %q lacks %q", tc.method, tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s %s: CSP allows inline code: %q", tc.method, tc.path, csp)
		}
		if h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, h)
		}
		if tc.page && h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", tc.method, tc.path, h.Get("Cache-Control"))
		}
	}
}

// TestSessionRotatedAndStoredAsHash: the cookie is HttpOnly and
// SameSite=Strict, a new id at sign-in, and the store knows only its
// hash.
func TestSessionRotatedAndStoredAsHash(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	res, _ := b.do("GET", "/console/signin", nil)
	var c0 *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "mtm_console" {
			c0 = c
		}
	}
	if c0 == nil || !c0.HttpOnly || c0.SameSite != http.SameSiteStrictMode || c0.Path != "/console/" {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Strict, Path=/console/", c0)
	}
	res, _ = b.signIn("rph@a.test", password)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/inbox" {
		t.Fatalf("sign-in answered %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	c1 := b.cookie()
	if c1 == "" || c1 == c0.Value {
		t.Fatalf("the session id was not rotated at sign-in (%q → %q)", c0.Value, c1)
	}
	ctx := context.Background()
	s, err := e.store.GetConsoleSession(ctx, auth.HashSecret(c1), e.clock.Now())
	if err != nil || s.AccountID == "" {
		t.Fatalf("session under the id's hash: %+v %v", s, err)
	}
	if strings.Contains(string(s.Sealed), "rph@a.test") {
		t.Fatal("the stored session holds readable state")
	}
	if _, err := e.store.GetConsoleSession(ctx, c1, e.clock.Now()); err == nil {
		t.Fatal("the store holds the raw session id")
	}
	if res, _ := b.do("GET", "/console/inbox", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("inbox after sign-in: %d", res.StatusCode)
	}
	// Sign-out ends the session on the server.
	_, page := b.do("GET", "/console/inbox", nil)
	b.do("POST", "/console/signout", url.Values{"csrf": {token(t, page)}})
	if _, err := e.store.GetConsoleSession(ctx, auth.HashSecret(c1), e.clock.Now()); err == nil {
		t.Fatal("the session survived sign-out")
	}
}

// TestPostWithoutTokenRefused: every POST needs the session's token; a
// token of another session does not do.
func TestPostWithoutTokenRefused(t *testing.T) {
	e := newEnv(t)
	a, other := e.browser(), e.browser()
	a.signIn("rph@a.test", password)
	other.signIn("rph@a.test", password)
	_, otherPage := other.do("GET", "/console/inbox", nil)
	for name, form := range map[string]url.Values{"no token": {}, "another session's token": {"csrf": {token(t, otherPage)}}} {
		res, _ := a.do("POST", "/console/signout", form)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("sign-out with %s: %d, want 403", name, res.StatusCode)
		}
		res, _ = a.do("POST", "/console/account/second-factor", form)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("page POST with %s: %d, want 403", name, res.StatusCode)
		}
	}
	if res, _ := a.do("GET", "/console/inbox", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("the refused POSTs signed the session out: %d", res.StatusCode)
	}
}

// TestIdleExpiry: activity keeps a session (its API tokens refreshed as
// they expire); inactivity past the idle timeout ends it.
func TestIdleExpiry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn("rph@a.test", password)
	for range 3 {
		e.clock.Advance(25 * time.Minute) // past the 15-minute access token each time
		if res, _ := b.do("GET", "/console/inbox", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("active session refused after 25 min: %d", res.StatusCode)
		}
	}
	e.clock.Advance(31 * time.Minute)
	res, _ := b.do("GET", "/console/inbox", nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/signin" {
		t.Fatalf("after 31 idle minutes: %d → %q, want the sign-in page", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestSignInThrottledLikeTheAPI: the console's sign-in spends the API's
// budgets (it calls AuthService.Login).
func TestSignInThrottledLikeTheAPI(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	var res *http.Response
	var page string
	for i := 0; i < 12; i++ {
		res, page = b.signIn("rph@a.test", "wrong password")
	}
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(page, "Too many failed sign-ins") {
		t.Fatalf("12th wrong password: %d\n%s", res.StatusCode, page)
	}
	if res, _ := b.signIn("rph@a.test", password); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d, want 429", res.StatusCode)
	}
}

// TestAPISeesTheBrowsersAddress: the console's calls carry the browser's
// address to the API, so its audit and throttles see the real client,
// not the console (here: the failed sign-in in the audit archive).
func TestAPISeesTheBrowsersAddress(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.from = "203.0.113.7"
	b.signIn("rph@a.test", "wrong password")
	var failed bool
	for line := range strings.SplitSeq(e.archive.String(), "\n") {
		failed = failed || strings.Contains(line, `"client_addr":"203.0.113.7"`) && strings.Contains(line, "wrong_password")
	}
	if !failed {
		t.Fatalf("the audit archive does not name the browser's address for the console's failed sign-in:\n%s", e.archive.String())
	}
}

var secretOnPage = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)

// TestAdminRequiresSecondFactor: the admin requires it on the account
// page; the next sign-in enrols (the page shows the key), later sign-ins
// need a code, and a code is good once.
func TestAdminRequiresSecondFactor(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	admin.signIn("rph@a.test", password)
	_, page := admin.do("GET", "/console/account", nil)
	if !strings.Contains(page, "Require a second factor") {
		t.Fatalf("the admin's account page offers no requirement:\n%s", page)
	}
	res, page := admin.do("POST", "/console/account/require-second-factor", url.Values{"csrf": {token(t, page)}, "require": {"on"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "now sign in with a second factor") {
		t.Fatalf("requiring: %d\n%s", res.StatusCode, page)
	}

	// The next sign-in enrols.
	b := e.browser()
	res, _ = b.signIn("rph@a.test", password)
	if loc := res.Header.Get("Location"); loc != "/console/signin/code" {
		t.Fatalf("password sign-in went to %q, want the code page", loc)
	}
	if res, _ := b.do("GET", "/console/inbox", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the inbox before the code: %d, want a redirect to sign-in", res.StatusCode)
	}
	_, page = b.do("GET", "/console/signin/code", nil)
	m := secretOnPage.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the enrolment page shows no key:\n%s", page)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	code, err := auth.TOTPCode(secret, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, _ = b.do("POST", "/console/signin/code", url.Values{"csrf": {token(t, page)}, "code": {code}})
	if loc := res.Header.Get("Location"); loc != "/console/inbox" {
		t.Fatalf("the first code went to %q", loc)
	}
	if res, _ := b.do("GET", "/console/inbox", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("inbox after enrolling: %d", res.StatusCode)
	}

	// The same code again (within its window) is refused; the next works.
	c := e.browser()
	c.signIn("rph@a.test", password)
	_, page = c.do("GET", "/console/signin/code", nil)
	if secretOnPage.MatchString(page) {
		t.Fatal("an enrolled account is shown a new key")
	}
	res, page = c.do("POST", "/console/signin/code", url.Values{"csrf": {token(t, page)}, "code": {code}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "used already") {
		t.Fatalf("a used code: %d\n%s", res.StatusCode, page)
	}
	e.clock.Advance(30 * time.Second)
	next, _ := auth.TOTPCode(secret, e.clock.Now())
	res, _ = c.do("POST", "/console/signin/code", url.Values{"csrf": {token(t, page)}, "code": {next}})
	if loc := res.Header.Get("Location"); loc != "/console/inbox" {
		t.Fatalf("the next code went to %q", loc)
	}
}

// TestEnrolFromAccountPage: a pharmacist turns the second factor on; it
// is asked at the next sign-in.
func TestEnrolFromAccountPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn("rph@a.test", password)
	before := b.cookie()
	_, page := b.do("GET", "/console/account", nil)
	m := secretOnPage.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "otpauth://totp/") {
		t.Fatalf("the account page shows no key or otpauth URI:\n%s", page)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	code, _ := auth.TOTPCode(secret, e.clock.Now())
	res, page := b.do("POST", "/console/account/second-factor", url.Values{"csrf": {token(t, page)}, "password": {"wrong"}, "code": {code}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "password is wrong") {
		t.Fatalf("enrolling with a wrong password: %d\n%s", res.StatusCode, page)
	}
	res, _ = b.do("POST", "/console/account/second-factor", url.Values{"csrf": {token(t, page)}, "password": {password}, "code": {code}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("enrolling: %d", res.StatusCode)
	}
	if b.cookie() == before {
		t.Fatal("the session id was not rotated when the sign-in was replaced")
	}
	if _, page := b.do("GET", "/console/account", nil); !strings.Contains(page, "On: you sign in with a code") {
		t.Fatalf("after enrolling:\n%s", page)
	}
	res, _ = e.browser().signIn("rph@a.test", password)
	if loc := res.Header.Get("Location"); loc != "/console/signin/code" {
		t.Fatalf("sign-in after enrolling went to %q, want the code page", loc)
	}
}

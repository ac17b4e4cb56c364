package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config carries the console's dependencies. API, Store and Logger are
// required.
type Config struct {
	// API is the handler serving the mtm.v1 services behind their
	// interceptors (authentication, audit, validation): the console calls
	// it in process, as a client.
	API http.Handler
	// Store keeps the console's sessions (nothing else: data goes
	// through API).
	Store  store.ConsoleSessions
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IdleTimeout signs a session out after this long without a request
	// (default 30 minutes).
	IdleTimeout time.Duration
	// Secure marks the cookie Secure even on plain-HTTP requests (TLS
	// ends at a proxy in front); requests over TLS always get it.
	Secure bool
}

// DefaultIdleTimeout is Config.IdleTimeout's default.
const DefaultIdleTimeout = 30 * time.Minute

// Console is the pharmacist console: an http.Handler for /console/.
type Console struct {
	cfg   Config
	mux   *http.ServeMux
	api   *API
	pipe  *inProcess
	pages map[string]*template.Template
}

// New builds the console. Close it when done.
func New(cfg Config) (*Console, error) {
	var errs []error
	if cfg.API == nil {
		errs = append(errs, errors.New("missing API handler"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("missing store"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("missing logger"))
	}
	if cfg.IdleTimeout < 0 {
		errs = append(errs, errors.New("negative idle timeout"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("console.New: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, fmt.Errorf("console.New: %w", err)
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), pages: pages}
	c.pipe = newInProcess(cfg.API, cfg.Logger)
	c.api = newAPI(c.pipe)
	c.routes()
	return c, nil
}

// Close closes the in-process connection to the API.
func (c *Console) Close() error { return c.pipe.Close() }

// ServeHTTP serves /console/... with the security headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w.Header(), strings.HasPrefix(r.URL.Path, "/console/static/"))
	c.mux.ServeHTTP(w, r)
}

// routes registers every page: the core ones here, the others in
// pages.go.
func (c *Console) routes() {
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/inbox", http.StatusSeeOther)
	})
	c.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.renderError(w, r, nil, http.StatusNotFound, "There is no such page.")
	})
	c.signInRoutes()
	c.inboxRoutes()
	c.threadRoutes()
	c.accountRoutes()
	c.morePages()
}

// secureHeaders sets the headers every answer carries: a strict CSP (no
// inline script or style, nothing from other origins, no framing), no
// referrer, no MIME sniffing; pages (which show PHI) are never cached.
func secureHeaders(h http.Header, static bool) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if static {
		h.Set("Cache-Control", "public, max-age=300")
	} else {
		h.Set("Cache-Control", "no-store")
	}
}

// PageFunc handles one signed-in page request. It returns nil when it
// answered (rendered or redirected), or an error (an API error as it
// came, or any other) that the console turns into an error page.
type PageFunc func(rq *Request) error

// Request is one signed-in request: the writer and request, the session,
// and the API whose calls, made with rq.Context(), act as the pharmacist.
type Request struct {
	W       http.ResponseWriter
	R       *http.Request
	Session *Session
	API     *API
	c       *Console
}

// Context is the request's context; API calls made with it carry the
// pharmacist's access token and the browser's address.
func (rq *Request) Context() context.Context { return rq.R.Context() }

// CSRF is the token every form of this session must post as "csrf".
func (rq *Request) CSRF() string { return csrfToken(rq.Session.id) }

// Page registers a page that needs a signed-in pharmacist, under a
// net/http pattern ("GET /console/patients/{id}"). The console checks the
// session (redirecting to sign-in when there is none), keeps its access
// token fresh, refuses a POST/PUT/DELETE without the session's CSRF token
// (403), and renders what the page returns as an error.
func (c *Console) Page(pattern string, h PageFunc) {
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		s, err := c.loadSession(ctx, cookieID(r))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			c.renderError(w, r, nil, http.StatusServiceUnavailable, "The console cannot reach its storage; try again shortly.")
			c.cfg.Logger.ErrorContext(ctx, "console: loading session", "error", err.Error())
			return
		}
		if s == nil || s.state.Pending != nil || s.state.AccessToken == "" {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
			} else {
				c.renderError(w, r, nil, http.StatusUnauthorized, "Your session ended; sign in again.")
			}
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !checkCSRF(r, s.id) {
			c.renderError(w, r, s, http.StatusForbidden, "This form has expired or did not come from the console. Reload the page and try again.")
			return
		}
		if err := c.touch(ctx, s); err != nil {
			c.fail(w, r, s, err)
			return
		}
		ctx = withCaller(ctx, caller{accessToken: s.state.AccessToken, clientAddr: clientaddr.String(ctx)})
		rq := &Request{W: w, R: r.WithContext(ctx), Session: s, API: c.api, c: c}
		if err := h(rq); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

package console

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// cookieName is the console's session cookie. Its value is the session
// id: 32 random bytes, never stored (the store keeps its hash).
const cookieName = "mtm_console"

// Session is the signed-in pharmacist of a request. Pages read it; the
// console keeps the API tokens it holds on the server, never in the
// browser.
type Session struct {
	AccountID  string
	PharmacyID string
	Email      string
	// Role is "pharmacist" or "pharmacy_admin".
	Role string

	id    string // the cookie's value
	state sessionState
}

// IsAdmin reports whether the session is a pharmacy administrator's.
func (s *Session) IsAdmin() bool { return s != nil && s.Role == roleAdmin }

const (
	rolePharmacist = "pharmacist"
	roleAdmin      = "pharmacy_admin"
)

// sessionState is what the store keeps, sealed with a key derived from the
// session id.
type sessionState struct {
	AccountID     string    `json:"a,omitempty"`
	PharmacyID    string    `json:"p,omitempty"`
	Email         string    `json:"e,omitempty"`
	Role          string    `json:"r,omitempty"`
	AccessToken   string    `json:"at,omitempty"`
	AccessExpires time.Time `json:"ax,omitzero"`
	RefreshToken  string    `json:"rt,omitempty"`
	LastSeen      time.Time `json:"ls"`
	// SecondFactor: the account signs in with a TOTP code.
	SecondFactor bool `json:"sf,omitempty"`
	// EnrollSecret is a TOTP secret being set up from the account page.
	EnrollSecret string `json:"es,omitempty"`
	// Pending is set between the password and the second factor.
	Pending *pendingSignIn `json:"pd,omitempty"`
}

// pendingSignIn is a sign-in whose password was right and which waits
// for its one-time code. It lives a few minutes, sealed like the rest.
type pendingSignIn struct {
	Email    string    `json:"e"`
	Password string    `json:"pw"`
	Started  time.Time `json:"s"`
	// EnrollSecret is the new TOTP secret shown to a pharmacist who must
	// enrol before signing in.
	EnrollSecret string `json:"es,omitempty"`
}

// pendingTTL is how long the one-time code page waits.
const pendingTTL = 5 * time.Minute

// newSessionID returns a fresh cookie value.
func newSessionID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// derive returns HMAC-SHA256(id, label): per-session keys and tokens.
func derive(id, label string) []byte {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte(label))
	return m.Sum(nil)
}

// csrfToken is the form token of the browser holding cookie id: derived
// from the HttpOnly cookie, so another site can neither read nor compute it.
func csrfToken(id string) string {
	return base64.RawURLEncoding.EncodeToString(derive(id, "mtm-console-csrf"))
}

func seal(id string, st sessionState) ([]byte, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(derive(id, "mtm-console-seal"))
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return gcm.Seal(nonce, nonce, plain, nil), nil
}

func unseal(id string, sealed []byte) (sessionState, error) {
	var st sessionState
	block, err := aes.NewCipher(derive(id, "mtm-console-seal"))
	if err != nil {
		return st, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return st, err
	}
	if len(sealed) < gcm.NonceSize() {
		return st, errors.New("sealed session too short")
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(plain, &st)
}

// cookieID returns the session id the browser sent, or "".
func cookieID(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil || len(c.Value) != 43 {
		return ""
	}
	return c.Value
}

// setCookie gives the browser session id (MaxAge 0: a browser-session
// cookie; the server side expires on inactivity).
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id, Path: "/console/",
		HttpOnly: true, Secure: c.cfg.Secure || r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: "/console/", MaxAge: -1,
		HttpOnly: true, Secure: c.cfg.Secure || r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// loadSession returns the live session of cookie id, or store.ErrNotFound.
func (c *Console) loadSession(ctx context.Context, id string) (*Session, error) {
	if id == "" {
		return nil, store.ErrNotFound
	}
	rec, err := c.cfg.Store.GetConsoleSession(ctx, auth.HashSecret(id), c.cfg.Now())
	if err != nil {
		return nil, err
	}
	st, err := unseal(id, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("console: unsealing session: %w", err)
	}
	return &Session{AccountID: st.AccountID, PharmacyID: st.PharmacyID, Email: st.Email, Role: st.Role, id: id, state: st}, nil
}

// saveSession stores s (state, last seen now) for another idle period.
func (c *Console) saveSession(ctx context.Context, s *Session) error {
	now := c.cfg.Now()
	s.state.LastSeen = now
	sealed, err := seal(s.id, s.state)
	if err != nil {
		return err
	}
	expires := now.Add(c.cfg.IdleTimeout)
	if s.state.Pending != nil {
		expires = s.state.Pending.Started.Add(pendingTTL)
	}
	return c.cfg.Store.PutConsoleSession(ctx, store.ConsoleSession{
		IDHash: auth.HashSecret(s.id), AccountID: s.state.AccountID, Sealed: sealed, ExpiresAt: expires,
	})
}

// startSession stores st under a fresh id (rotating the id: an id known
// before sign-in is worthless after it), deletes the old one and sets the
// cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, oldID string, st sessionState) (*Session, error) {
	id, err := newSessionID()
	if err != nil {
		return nil, err
	}
	s := &Session{AccountID: st.AccountID, PharmacyID: st.PharmacyID, Email: st.Email, Role: st.Role, id: id, state: st}
	if err := c.saveSession(r.Context(), s); err != nil {
		return nil, err
	}
	if oldID != "" {
		if err := c.cfg.Store.DeleteConsoleSession(r.Context(), auth.HashSecret(oldID)); err != nil {
			c.cfg.Logger.WarnContext(r.Context(), "console: deleting the replaced session", "error", err.Error())
		}
	}
	c.setCookie(w, r, id)
	return s, nil
}

// endSession signs the session out: the API's refresh token is revoked,
// the stored session deleted, the cookie cleared.
func (c *Console) endSession(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	if s.state.RefreshToken != "" {
		_, err := c.api.Auth.Logout(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}),
			connect.NewRequest(&mtmv1.LogoutRequest{RefreshToken: s.state.RefreshToken}))
		if err != nil {
			c.cfg.Logger.WarnContext(ctx, "console: API sign-out", "error", err.Error())
		}
	}
	if err := c.cfg.Store.DeleteConsoleSession(ctx, auth.HashSecret(s.id)); err != nil {
		c.cfg.Logger.WarnContext(ctx, "console: deleting session", "error", err.Error())
	}
	c.clearCookie(w, r)
}

// touch keeps a signed-in session alive and its access token fresh. A
// session whose sign-in the API no longer honours is an error with code
// unauthenticated.
func (c *Console) touch(ctx context.Context, s *Session) error {
	now := c.cfg.Now()
	dirty := now.Sub(s.state.LastSeen) > time.Minute
	if now.Add(30 * time.Second).After(s.state.AccessExpires) {
		res, err := c.api.Auth.Refresh(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}),
			connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: s.state.RefreshToken}))
		if err != nil {
			return err
		}
		s.state.AccessToken = res.Msg.GetTokens().GetAccessToken()
		s.state.AccessExpires = res.Msg.GetTokens().GetAccessTokenExpiresAt().AsTime()
		s.state.RefreshToken = res.Msg.GetTokens().GetRefreshToken()
		dirty = true
	}
	if dirty {
		return c.saveSession(ctx, s)
	}
	return nil
}

// checkCSRF reports whether a POST carries the form token of its cookie
// (field "csrf" or header X-CSRF-Token) and does not come from another
// site.
func checkCSRF(r *http.Request, id string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if id == "" {
		return false
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	want := csrfToken(id)
	return len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

package console

import (
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/clientaddr"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// signInForm is the sign-in pages' data.
type signInForm struct {
	Email string
	Error string
}

func (c *Console) signInRoutes() {
	c.mux.HandleFunc("GET /console/signin", c.signInPage)
	c.mux.HandleFunc("POST /console/signin", c.signIn)
	c.mux.HandleFunc("POST /console/signout", c.signOut)
}

// anonymousView is the view of a page shown before sign-in: the browser
// gets a cookie id (not stored anywhere) so that its forms carry a token.
func (c *Console) anonymousView(w http.ResponseWriter, r *http.Request, title string, data any) (View, error) {
	id := cookieID(r)
	if id == "" {
		var err error
		if id, err = newSessionID(); err != nil {
			return View{}, err
		}
		c.setCookie(w, r, id)
	}
	return View{Title: title, Data: data, CSRF: csrfToken(id)}, nil
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if s, err := c.loadSession(r.Context(), cookieID(r)); err == nil && s.state.Pending == nil && s.state.AccessToken != "" {
		http.Redirect(w, r, "/console/inbox", http.StatusSeeOther)
		return
	}
	c.showSignIn(w, r, http.StatusOK, signInForm{})
}

func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, f signInForm) {
	v, err := c.anonymousView(w, r, "Sign in", f)
	if err == nil {
		err = c.render(w, status, "signin.html", v)
	}
	if err != nil {
		c.fail(w, r, nil, err)
	}
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	oldID := cookieID(r)
	if !checkCSRF(r, oldID) {
		c.showSignIn(w, r, http.StatusForbidden, signInForm{Error: "The sign-in form expired. Please try again."})
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	c.login(w, r, oldID, email, password, "", "")
}

// login signs in through AuthService.Login (with its throttles and audit)
// and, on success, starts a session under a fresh id.
func (c *Console) login(w http.ResponseWriter, r *http.Request, oldID, email, password, code, enrollSecret string) {
	ctx := r.Context()
	res, err := c.api.Auth.Login(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}), connect.NewRequest(&mtmv1.LoginRequest{
		Email: email, Password: password,
	}))
	if err != nil {
		c.loginFailed(w, r, oldID, email, password, err)
		return
	}
	m := res.Msg
	role := ""
	switch m.GetRole() {
	case mtmv1.Role_ROLE_PHARMACIST:
		role = rolePharmacist
	case mtmv1.Role_ROLE_PHARMACY_ADMIN:
		role = roleAdmin
	default:
		_, _ = c.api.Auth.Logout(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}),
			connect.NewRequest(&mtmv1.LogoutRequest{RefreshToken: m.GetTokens().GetRefreshToken()}))
		c.showSignIn(w, r, http.StatusForbidden, signInForm{Email: email, Error: "The console is for pharmacy staff. Patients and caregivers use the app."})
		return
	}
	st := sessionState{
		AccountID: m.GetAccountId(), PharmacyID: m.GetPharmacyId(), Email: store.NormalizeEmail(email), Role: role,
		AccessToken: m.GetTokens().GetAccessToken(), AccessExpires: m.GetTokens().GetAccessTokenExpiresAt().AsTime(),
		RefreshToken: m.GetTokens().GetRefreshToken(),
	}
	if _, err := c.startSession(w, r, oldID, st); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	http.Redirect(w, r, "/console/inbox", http.StatusSeeOther)
}

// loginFailed shows why a sign-in failed, in words that do not tell an
// unknown e-mail from a wrong password.
func (c *Console) loginFailed(w http.ResponseWriter, r *http.Request, oldID, email, password string, err error) {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodeInvalidArgument:
		c.showSignIn(w, r, http.StatusUnauthorized, signInForm{Email: email, Error: "The e-mail or password is wrong."})
	case connect.CodeResourceExhausted:
		c.showSignIn(w, r, http.StatusTooManyRequests, signInForm{Email: email, Error: "Too many failed sign-ins. Wait a few minutes and try again."})
	default:
		c.fail(w, r, nil, err)
	}
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	id := cookieID(r)
	if !checkCSRF(r, id) {
		c.renderError(w, r, nil, http.StatusForbidden, "This form has expired. Reload the page and try again.")
		return
	}
	s, err := c.loadSession(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, nil, err)
		return
	}
	if s != nil {
		c.endSession(w, r, s)
	} else {
		c.clearCookie(w, r)
	}
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
}

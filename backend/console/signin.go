package console

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"github.com/skip2/go-qrcode"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/mtmapp/mtm/backend/auth"

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
	c.mux.HandleFunc("GET /console/signin/code", c.codePage)
	c.mux.HandleFunc("POST /console/signin/code", c.signInCode)
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

// codeForm is the one-time code page's data.
type codeForm struct {
	Error string
	// Enrol: the pharmacy requires a second factor and the account has
	// none yet: show the new secret to add to an authenticator app.
	Enrol *enrolment
}

// enrolment is a new TOTP secret as the pharmacist adds it to an app.
type enrolment struct {
	Secret string       // base32, grouped by four for reading
	URI    template.URL // otpauth://
	QR     template.URL
}

func newEnrolment(email, secret string) *enrolment {
	uri := auth.TOTPURI("MTM console", email, secret)
	e := &enrolment{Secret: groupBy4(secret), URI: template.URL(uri)}
	if png, err := qrcode.Encode(uri, qrcode.Medium, 220); err == nil {
		e.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	}
	return e
}

func groupBy4(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pendingSession returns the sign-in waiting for its code, or nil.
func (c *Console) pendingSession(r *http.Request) *Session {
	s, err := c.loadSession(r.Context(), cookieID(r))
	if err != nil || s.state.Pending == nil || c.cfg.Now().Sub(s.state.Pending.Started) > pendingTTL {
		return nil
	}
	return s
}

func (c *Console) codePage(w http.ResponseWriter, r *http.Request) {
	s := c.pendingSession(r)
	if s == nil {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	c.showCode(w, r, s, http.StatusOK, "")
}

func (c *Console) showCode(w http.ResponseWriter, r *http.Request, s *Session, status int, msg string) {
	f := codeForm{Error: msg}
	if p := s.state.Pending; p.EnrollSecret != "" {
		f.Enrol = newEnrolment(p.Email, p.EnrollSecret)
	}
	title := "One-time code"
	if f.Enrol != nil {
		title = "Set up your second factor"
	}
	if err := c.render(w, status, "signin_code.html", View{Title: title, Data: f, CSRF: csrfToken(s.id)}); err != nil {
		c.fail(w, r, nil, err)
	}
}

func (c *Console) signInCode(w http.ResponseWriter, r *http.Request) {
	s := c.pendingSession(r)
	if s == nil {
		c.showSignIn(w, r, http.StatusUnauthorized, signInForm{Error: "The sign-in took too long. Please start again."})
		return
	}
	if !checkCSRF(r, s.id) {
		c.showCode(w, r, s, http.StatusForbidden, "The form expired. Please try again.")
		return
	}
	code := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("code")), " ", "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		c.showCode(w, r, s, http.StatusUnprocessableEntity, "Enter the 6 digits your authenticator app shows.")
		return
	}
	p := s.state.Pending
	c.login(w, r, s.id, p.Email, p.Password, code, p.EnrollSecret)
}

// login signs in through AuthService.Login (with its throttles and audit)
// and, on success, starts a session under a fresh id.
func (c *Console) login(w http.ResponseWriter, r *http.Request, oldID, email, password, code, enrollSecret string) {
	ctx := r.Context()
	res, err := c.api.Auth.Login(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}), connect.NewRequest(&mtmv1.LoginRequest{
		Email: email, Password: password, TotpCode: code, NewTotpSecret: enrollSecret,
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
		RefreshToken: m.GetTokens().GetRefreshToken(), SecondFactor: m.GetSecondFactor(),
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
	reason := errorReason(err)
	if pending := c.pendingSession(r); pending != nil && pending.id == oldID {
		// The code step: a wrong code keeps the pending sign-in.
		switch {
		case reason == reasonSecondFactorInvalid:
			c.showCode(w, r, pending, http.StatusUnauthorized, "That code is wrong or was used already. Wait for the next code and try again.")
			return
		case connect.CodeOf(err) == connect.CodeResourceExhausted:
			c.showCode(w, r, pending, http.StatusTooManyRequests, "Too many failed attempts. Wait a few minutes and try again.")
			return
		}
		c.endSession(w, r, pending)
		oldID = ""
	}
	if reason == reasonSecondFactorRequired || reason == reasonSecondFactorEnroll {
		p := &pendingSignIn{Email: email, Password: password, Started: c.cfg.Now()}
		if reason == reasonSecondFactorEnroll {
			secret, err := auth.NewTOTPSecret()
			if err != nil {
				c.fail(w, r, nil, err)
				return
			}
			p.EnrollSecret = secret
		}
		if _, err := c.startSession(w, r, oldID, sessionState{Pending: p}); err != nil {
			c.fail(w, r, nil, err)
			return
		}
		http.Redirect(w, r, "/console/signin/code", http.StatusSeeOther)
		return
	}
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

// The API's ErrorInfo reasons the sign-in pages act on.
const (
	reasonSecondFactorRequired = "SECOND_FACTOR_REQUIRED"
	reasonSecondFactorEnroll   = "SECOND_FACTOR_ENROLLMENT_REQUIRED"
	reasonSecondFactorInvalid  = "SECOND_FACTOR_INVALID"
)

// errorReason is the ErrorInfo reason of an API error, or "".
func errorReason(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				return info.GetReason()
			}
		}
	}
	return ""
}

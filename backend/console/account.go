package console

import (
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clientaddr"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// accountData is the account page: the second factor's state, and the
// enrolment when it is off.
type accountData struct {
	SecondFactor bool
	Enrol        *enrolment
	Error        string
	// Pharmacy is shown to pharmacy admins, who may require the second
	// factor of all the pharmacy's staff.
	Pharmacy *mtmv1.Pharmacy
}

func (c *Console) accountRoutes() {
	c.Page("GET /console/account", c.account)
	c.Page("POST /console/account/second-factor", c.enrolSecondFactor)
	c.Page("POST /console/account/require-second-factor", c.requireSecondFactor)
}

func (c *Console) account(rq *Request) error {
	return c.showAccount(rq, http.StatusOK, "", "")
}

func (c *Console) showAccount(rq *Request, status int, msg, flash string) error {
	d := accountData{SecondFactor: rq.Session.state.SecondFactor, Error: msg}
	if !d.SecondFactor {
		if rq.Session.state.EnrollSecret == "" {
			secret, err := auth.NewTOTPSecret()
			if err != nil {
				return err
			}
			rq.Session.state.EnrollSecret = secret
			if err := c.saveSession(rq.Context(), rq.Session); err != nil {
				return err
			}
		}
		d.Enrol = newEnrolment(rq.Session.Email, rq.Session.state.EnrollSecret)
	}
	if rq.Session.IsAdmin() {
		res, err := rq.API.Care.GetPharmacy(rq.Context(), connect.NewRequest(&mtmv1.GetPharmacyRequest{}))
		if err != nil {
			return err
		}
		d.Pharmacy = res.Msg.GetPharmacy()
	}
	return rq.Render(status, "account.html", View{Title: "Your account", Data: d, Flash: flash})
}

// enrolSecondFactor turns the second factor on: a sign-in with the
// password and the first code of the new secret (AuthService.Login
// enrols it), which replaces this session's sign-in.
func (c *Console) enrolSecondFactor(rq *Request) error {
	s := rq.Session
	if s.state.SecondFactor || s.state.EnrollSecret == "" {
		return rq.Redirect("/console/account")
	}
	code := strings.ReplaceAll(strings.TrimSpace(rq.R.PostFormValue("code")), " ", "")
	ctx := rq.Context()
	res, err := c.api.Auth.Login(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}), connect.NewRequest(&mtmv1.LoginRequest{
		Email: s.Email, Password: rq.R.PostFormValue("password"), TotpCode: code, NewTotpSecret: s.state.EnrollSecret,
	}))
	if err != nil {
		switch {
		case errorReason(err) == reasonSecondFactorInvalid:
			return c.showAccount(rq, http.StatusUnprocessableEntity, "That code is wrong or was used already. Wait for the next code and try again.", "")
		case connect.CodeOf(err) == connect.CodeUnauthenticated:
			return c.showAccount(rq, http.StatusUnprocessableEntity, "The password is wrong.", "")
		case connect.CodeOf(err) == connect.CodeInvalidArgument:
			return c.showAccount(rq, http.StatusUnprocessableEntity, "Enter your password and the 6 digits your authenticator app shows.", "")
		case connect.CodeOf(err) == connect.CodeResourceExhausted:
			return c.showAccount(rq, http.StatusTooManyRequests, "Too many failed attempts. Wait a few minutes and try again.", "")
		}
		return err
	}
	// The new sign-in replaces the old one, under a fresh session id.
	old := s.state
	st := old
	st.AccessToken = res.Msg.GetTokens().GetAccessToken()
	st.AccessExpires = res.Msg.GetTokens().GetAccessTokenExpiresAt().AsTime()
	st.RefreshToken = res.Msg.GetTokens().GetRefreshToken()
	st.SecondFactor, st.EnrollSecret = res.Msg.GetSecondFactor(), ""
	if _, err := c.startSession(rq.W, rq.R, s.id, st); err != nil {
		return err
	}
	if _, err := c.api.Auth.Logout(withCaller(ctx, caller{clientAddr: clientaddr.String(ctx)}),
		connect.NewRequest(&mtmv1.LogoutRequest{RefreshToken: old.RefreshToken})); err != nil {
		c.cfg.Logger.WarnContext(ctx, "console: revoking the replaced sign-in", "error", err.Error())
	}
	return rq.Redirect("/console/account")
}

// requireSecondFactor turns the pharmacy's requirement on or off
// (UpdatePharmacy, admins only: the API refuses others). The pharmacy's
// other details are sent back as they are.
func (c *Console) requireSecondFactor(rq *Request) error {
	ctx := rq.Context()
	res, err := rq.API.Care.GetPharmacy(ctx, connect.NewRequest(&mtmv1.GetPharmacyRequest{}))
	if err != nil {
		return err
	}
	ph := res.Msg.GetPharmacy()
	require := rq.R.PostFormValue("require") == "on"
	_, err = rq.API.Care.UpdatePharmacy(ctx, connect.NewRequest(&mtmv1.UpdatePharmacyRequest{
		Name: ph.GetName(), Phone: ph.GetPhone(), Tty: ph.GetTty(), Hours: ph.GetHours(), Address: ph.GetAddress(),
		Npi: ph.GetNpi(), PlanName: ph.GetPlanName(), RequireSecondFactor: &require,
	}))
	if f, ok := FormErrorsFrom(err); ok {
		return c.showAccount(rq, http.StatusUnprocessableEntity, f.Message, "")
	}
	if err != nil {
		return err
	}
	flash := "Staff no longer need a second factor to sign in."
	if require {
		flash = "All staff of the pharmacy now sign in with a second factor; those without one set it up at their next sign-in."
	}
	return c.showAccount(rq, http.StatusOK, "", flash)
}

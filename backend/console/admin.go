package console

import (
	"net/http"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Pharmacy admin: the pharmacy's details printed on patients' documents
// (GetPharmacy, UpdatePharmacy), whether staff must sign in with a second
// factor (UpdatePharmacy.require_second_factor) and new staff accounts
// (CreatePharmacist).
// CareService refuses non-admins; the page only hides what they may not
// do.

// adminData is what admin.html shows.
type adminData struct {
	Pharmacy *mtmv1.Pharmacy
	IsAdmin  bool
}

var adminNotices = map[string]string{
	"pharmacy-saved":     "Pharmacy details saved.",
	"pharmacist-created": "Account created. Give the pharmacist the e-mail and initial password in person.",
	"second-factor-on":   "Staff must now sign in with a one-time code; each enrols an authenticator app at their next sign-in.",
	"second-factor-off":  "Staff now sign in with their password alone.",
}

func serveAdmin(rq *Request) error { return showAdmin(rq, http.StatusOK, nil) }

func showAdmin(rq *Request, status int, fe *FormErrors) error {
	ph, err := rq.API.Care.GetPharmacy(rq.Context(), connect.NewRequest(&mtmv1.GetPharmacyRequest{}))
	if err != nil {
		return err
	}
	v := View{Title: "Pharmacy administration", Nav: "admin", Data: adminData{Pharmacy: ph.Msg.GetPharmacy(), IsAdmin: rq.Session.IsAdmin()}, Form: fe}
	if fe == nil {
		v.Flash = adminNotices[rq.R.URL.Query().Get("done")]
	}
	return rq.Render(status, "admin.html", v)
}

func adminDone(rq *Request, err error, done string) error {
	if err == nil {
		return rq.Redirect("/console/admin?done=" + done)
	}
	fe, status, ok := refused(err)
	if !ok {
		return err
	}
	return showAdmin(rq, status, fe)
}

func updatePharmacy(rq *Request) error {
	_, err := rq.API.Care.UpdatePharmacy(rq.Context(), connect.NewRequest(&mtmv1.UpdatePharmacyRequest{
		Name: rq.form("name"), Phone: rq.form("phone"), Tty: rq.form("tty"), Hours: rq.form("hours"),
		Address: rq.form("address"), Npi: rq.form("npi"), PlanName: rq.form("plan_name"),
	}))
	return adminDone(rq, err, "pharmacy-saved")
}

func createPharmacist(rq *Request) error {
	_, err := rq.API.Care.CreatePharmacist(rq.Context(), connect.NewRequest(&mtmv1.CreatePharmacistRequest{
		Email: rq.form("email"), Password: rq.R.PostFormValue("password"), DisplayName: rq.form("display_name"),
		Admin: rq.form("admin") == "yes", Npi: rq.form("npi"),
	}))
	return adminDone(rq, err, "pharmacist-created")
}

// setSecondFactor requires (or stops requiring) a second factor at the
// sign-in of the pharmacy's staff. UpdatePharmacy replaces the details, so
// they are read first and sent back as they are.
func setSecondFactor(rq *Request) error {
	ph, err := rq.API.Care.GetPharmacy(rq.Context(), connect.NewRequest(&mtmv1.GetPharmacyRequest{}))
	if err != nil {
		return err
	}
	p, require := ph.Msg.GetPharmacy(), rq.form("require") == "yes"
	_, err = rq.API.Care.UpdatePharmacy(rq.Context(), connect.NewRequest(&mtmv1.UpdatePharmacyRequest{
		Name: p.GetName(), Phone: p.GetPhone(), Tty: p.GetTty(), Hours: p.GetHours(), Address: p.GetAddress(),
		Npi: p.GetNpi(), PlanName: p.GetPlanName(), RequireSecondFactor: &require,
	}))
	done := "second-factor-off"
	if require {
		done = "second-factor-on"
	}
	return adminDone(rq, err, done)
}

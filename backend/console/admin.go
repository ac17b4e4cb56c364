package console

import (
	"net/http"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Pharmacy admin: the pharmacy's details printed on patients' documents
// (GetPharmacy, UpdatePharmacy) and new staff accounts (CreatePharmacist).
// Whether staff must use a second factor is shown here and set on the
// account page (account.go).
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

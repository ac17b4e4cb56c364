package console

import (
	"net/http"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Pharmacy admin: the pharmacy's details printed on patients' documents
// (GetPharmacy, UpdatePharmacy), new staff accounts (CreatePharmacist) and
// the second-factor requirement. CareService refuses non-admins; the page
// only hides what they may not do.

// adminPage is what admin.html shows.
type adminPage struct {
	pageBase
	Pharmacy *mtmv1.Pharmacy
	IsAdmin  bool
	Notice   string
	Problem  string
}

var adminNotices = map[string]string{
	"pharmacy-saved":     "Pharmacy details saved.",
	"pharmacist-created": "Account created. Give the pharmacist the e-mail and initial password in person.",
}

func (pg *pages) serveAdmin(w http.ResponseWriter, r *http.Request) {
	pg.showAdmin(w, r, http.StatusOK, adminNotices[r.URL.Query().Get("done")], "")
}

func (pg *pages) showAdmin(w http.ResponseWriter, r *http.Request, status int, notice, problem string) {
	ph, err := pg.care.GetPharmacy(r.Context(), connect.NewRequest(&mtmv1.GetPharmacyRequest{}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.render(w, r, status, "admin", adminPage{pageBase: pg.base(r, "Pharmacy administration"), Pharmacy: ph.Msg.GetPharmacy(),
		IsAdmin: pg.isAdmin(r), Notice: notice, Problem: problem})
}

func (pg *pages) adminDone(w http.ResponseWriter, r *http.Request, err error, done string) {
	if err == nil {
		http.Redirect(w, r, "/console/admin?done="+done, http.StatusSeeOther)
		return
	}
	pg.showAdmin(w, r, statusOf(err), "", problemText(err))
}

func (pg *pages) updatePharmacy(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.UpdatePharmacy(r.Context(), connect.NewRequest(&mtmv1.UpdatePharmacyRequest{
		Name: formText(r, "name"), Phone: formText(r, "phone"), Tty: formText(r, "tty"), Hours: formText(r, "hours"),
		Address: formText(r, "address"), Npi: formText(r, "npi"), PlanName: formText(r, "plan_name"),
	}))
	pg.adminDone(w, r, err, "pharmacy-saved")
}

func (pg *pages) createPharmacist(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.CreatePharmacist(r.Context(), connect.NewRequest(&mtmv1.CreatePharmacistRequest{
		Email: formText(r, "email"), Password: r.PostFormValue("password"), DisplayName: formText(r, "display_name"),
		Admin: r.PostFormValue("admin") == "yes", Npi: formText(r, "npi"),
	}))
	pg.adminDone(w, r, err, "pharmacist-created")
}

package console

import (
	"net/http"
	"net/url"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Patients: search (the name is posted, never put in a URL), enroll (the
// activation code is shown once, with a printable hand-out) and reissue a
// code. Patient ids in paths are the store's random ids, which say nothing
// about the patient.

// patientPath is the record page of a patient.
func patientPath(id string) string {
	return "/console/patients/" + url.PathEscape(id)
}

// patientsPage is what patients.html shows.
type patientsPage struct {
	pageBase
	Problem   string
	Today     string
	Query     string
	Searched  bool
	Results   []*mtmv1.Patient
	More      bool
	Enroll    map[string]string
	TimeZones []option
	Languages []option
}

// handoutPage is what handout (the activation code page) shows.
type handoutPage struct {
	pageBase
	Patient       *mtmv1.Patient
	Code          string
	ExpiresAt     string
	PharmacyName  string
	PharmacyPhone string
}

// enrollFields are the enroll form's inputs.
var enrollFields = []string{"given_name", "family_name", "date_of_birth", "time_zone", "preferred_language"}

// timeZones are the zones offered at enrollment (the US's, in the order
// pharmacies meet them); the API accepts any IANA zone.
var timeZones = []option{
	{"America/New_York", "Eastern (New York)"},
	{"America/Chicago", "Central (Chicago)"},
	{"America/Denver", "Mountain (Denver)"},
	{"America/Phoenix", "Mountain, no DST (Phoenix)"},
	{"America/Los_Angeles", "Pacific (Los Angeles)"},
	{"America/Anchorage", "Alaska (Anchorage)"},
	{"Pacific/Honolulu", "Hawaii (Honolulu)"},
	{"America/Puerto_Rico", "Atlantic (Puerto Rico)"},
	{"Pacific/Guam", "Chamorro (Guam)"},
}

// languages are the document languages with a catalog (English and
// Spanish); the API accepts any BCP 47 tag and prints English where there
// is none.
var languages = []option{{"", "English"}, {"es-US", "Spanish (español)"}}

func (pg *pages) patientsPage(r *http.Request) patientsPage {
	return patientsPage{pageBase: pg.base(r, "Patients"), Enroll: map[string]string{"time_zone": "America/New_York"},
		TimeZones: timeZones, Languages: languages, Today: pg.now().Format("2006-01-02")}
}

// servePatients shows the search and enroll forms.
func (pg *pages) servePatients(w http.ResponseWriter, r *http.Request) {
	pg.render(w, r, http.StatusOK, "patients", pg.patientsPage(r))
}

// searchPatients lists the pharmacy's patients whose name begins with the
// posted text.
func (pg *pages) searchPatients(w http.ResponseWriter, r *http.Request) {
	data := pg.patientsPage(r)
	data.Query, data.Searched = formText(r, "q"), true
	res, err := pg.care.SearchPatients(r.Context(), connect.NewRequest(&mtmv1.SearchPatientsRequest{NamePrefix: data.Query, PageSize: 100}))
	if err != nil {
		data.Searched, data.Problem = false, problemText(err)
		pg.render(w, r, statusOf(err), "patients", data)
		return
	}
	data.Results, data.More = res.Msg.GetPatients(), res.Msg.GetNextPageToken() != ""
	pg.render(w, r, http.StatusOK, "patients", data)
}

// enrollPatient creates the patient and shows the code once.
func (pg *pages) enrollPatient(w http.ResponseWriter, r *http.Request) {
	in := formValues(r, enrollFields...)
	res, err := pg.care.EnrollPatient(r.Context(), connect.NewRequest(&mtmv1.EnrollPatientRequest{
		GivenName: in["given_name"], FamilyName: in["family_name"], DateOfBirth: in["date_of_birth"],
		TimeZone: in["time_zone"], PreferredLanguage: in["preferred_language"],
	}))
	if err != nil {
		data := pg.patientsPage(r)
		data.Enroll, data.Problem = in, problemText(err)
		pg.render(w, r, statusOf(err), "patients", data)
		return
	}
	pg.showCode(w, r, res.Msg.GetPatient(), res.Msg.GetActivationCode(), res.Msg.GetActivationCodeExpiresAt().AsTime())
}

// reissueCode replaces the patient's activation code and shows the new one.
func (pg *pages) reissueCode(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("patient")
	rec, err := pg.care.GetPatientRecord(r.Context(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: id}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	res, err := pg.care.IssueActivationCode(r.Context(), connect.NewRequest(&mtmv1.IssueActivationCodeRequest{PatientId: id}))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	pg.showCode(w, r, rec.Msg.GetPatient(), res.Msg.GetActivationCode(), res.Msg.GetActivationCodeExpiresAt().AsTime())
}

// showCode renders the activation code and its hand-out. The page is
// never stored by the browser, so Back does not show the code again.
func (pg *pages) showCode(w http.ResponseWriter, r *http.Request, pt *mtmv1.Patient, code string, expires time.Time) {
	data := handoutPage{pageBase: pg.base(r, "Activation code"), Patient: pt, Code: code}
	if loc, err := time.LoadLocation(pt.GetTimeZone()); err == nil {
		expires = expires.In(loc)
	}
	data.ExpiresAt = expires.Format("01/02/2006 3:04 PM MST")
	if ph, err := pg.care.GetPharmacy(r.Context(), connect.NewRequest(&mtmv1.GetPharmacyRequest{})); err == nil {
		data.PharmacyName, data.PharmacyPhone = ph.Msg.GetPharmacy().GetName(), ph.Msg.GetPharmacy().GetPhone()
	}
	w.Header().Set("Cache-Control", "no-store")
	pg.render(w, r, http.StatusOK, "handout", data)
}

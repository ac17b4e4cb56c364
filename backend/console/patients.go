package console

import (
	"net/http"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Patients: search (the name is posted, never put in a URL), enroll (the
// activation code is shown once, with a hand-out to print) and reissue a
// code.

// patientsData is what patients.html shows.
type patientsData struct {
	Today     string
	Query     string
	QueryDOB  string // YYYY-MM-DD, optional
	Searched  bool
	Results   []*mtmv1.Patient
	More      bool
	Enroll    map[string]string
	TimeZones []option
	Languages []option
}

// codeData is what patients_code.html (the activation code and its
// hand-out) shows.
type codeData struct {
	Patient       *mtmv1.Patient
	Code          string
	ExpiresAt     string
	PharmacyName  string
	PharmacyPhone string
}

// enrollFields are the enroll form's inputs.
var enrollFields = []string{"given_name", "family_name", "date_of_birth", "time_zone", "preferred_language"}

// timeZones are the zones offered at enrollment (the United States'); the
// API accepts any IANA zone.
var timeZones = []option{
	{"America/New_York", "Eastern (New York)"},
	{"America/Chicago", "Central (Chicago)"},
	{"America/Denver", "Mountain (Denver)"},
	{"America/Phoenix", "Mountain, no daylight saving (Phoenix)"},
	{"America/Los_Angeles", "Pacific (Los Angeles)"},
	{"America/Anchorage", "Alaska (Anchorage)"},
	{"Pacific/Honolulu", "Hawaii (Honolulu)"},
	{"America/Puerto_Rico", "Atlantic (Puerto Rico)"},
	{"Pacific/Guam", "Chamorro (Guam)"},
}

// languages are the document languages with a catalog; the API accepts
// any BCP 47 tag and prints English where there is none.
var languages = []option{{"", "English"}, {"es-US", "Spanish (español)"}}

func newPatientsData(rq *Request) patientsData {
	return patientsData{Enroll: map[string]string{"time_zone": timeZones[0].Value}, TimeZones: timeZones, Languages: languages,
		Today: rq.now().Format("2006-01-02")}
}

func showPatients(rq *Request, status int, d patientsData, fe *FormErrors) error {
	return rq.Render(status, "patients.html", View{Title: "Patients", Nav: "patients", Data: d, Form: fe})
}

// servePatients shows the search and enroll forms.
func servePatients(rq *Request) error {
	if rq.R.URL.Query().Get("done") == "deleted" {
		return rq.Render(http.StatusOK, "patients.html", View{Title: "Patients", Nav: "patients", Data: newPatientsData(rq),
			Flash: "The patient was deleted: their record, messages, reminders and access are gone for good."})
	}
	return showPatients(rq, http.StatusOK, newPatientsData(rq), nil)
}

// deletePatient erases the patient for good (pharmacy admins), once the
// family name was typed again; a wrong name shows the record again with
// the refusal and deletes nothing.
func deletePatient(rq *Request) error {
	id := rq.R.PathValue("patient")
	_, err := rq.API.Care.DeletePatient(rq.Context(), connect.NewRequest(&mtmv1.DeletePatientRequest{
		PatientId: id, ConfirmFamilyName: rq.form("confirm_family_name"),
	}))
	if err != nil {
		fe, status, ok := refused(err)
		if !ok {
			return err
		}
		return showRecord(rq, status, fe, nil)
	}
	return rq.Redirect("/console/patients?done=deleted")
}

// searchPatients lists the pharmacy's patients whose given or family name
// begins with the posted text.
func searchPatients(rq *Request) error {
	d := newPatientsData(rq)
	d.Query, d.QueryDOB = rq.form("q"), rq.form("dob")
	res, err := rq.API.Care.SearchPatients(rq.Context(), connect.NewRequest(&mtmv1.SearchPatientsRequest{NamePrefix: d.Query, DateOfBirth: d.QueryDOB, PageSize: 100}))
	if err != nil {
		fe, status, ok := refused(err)
		if !ok {
			return err
		}
		return showPatients(rq, status, d, fe)
	}
	d.Searched, d.Results, d.More = true, res.Msg.GetPatients(), res.Msg.GetNextPageToken() != ""
	return showPatients(rq, http.StatusOK, d, nil)
}

// enrollPatient creates the patient and shows the activation code once.
func enrollPatient(rq *Request) error {
	in := rq.formValues(enrollFields...)
	res, err := rq.API.Care.EnrollPatient(rq.Context(), connect.NewRequest(&mtmv1.EnrollPatientRequest{
		GivenName: in["given_name"], FamilyName: in["family_name"], DateOfBirth: in["date_of_birth"],
		TimeZone: in["time_zone"], PreferredLanguage: in["preferred_language"],
	}))
	if err != nil {
		fe, status, ok := refused(err)
		if !ok {
			return err
		}
		d := newPatientsData(rq)
		d.Enroll = in
		return showPatients(rq, status, d, fe)
	}
	return showCode(rq, res.Msg.GetPatient(), res.Msg.GetActivationCode(), res.Msg.GetActivationCodeExpiresAt().AsTime())
}

// reissueCode replaces the patient's activation code and shows the new one.
func reissueCode(rq *Request) error {
	id := rq.R.PathValue("patient")
	rec, err := rq.API.Care.GetPatientRecord(rq.Context(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: id}))
	if err != nil {
		return err
	}
	res, err := rq.API.Care.IssueActivationCode(rq.Context(), connect.NewRequest(&mtmv1.IssueActivationCodeRequest{PatientId: id}))
	if err != nil {
		return err
	}
	return showCode(rq, rec.Msg.GetPatient(), res.Msg.GetActivationCode(), res.Msg.GetActivationCodeExpiresAt().AsTime())
}

// showCode renders the activation code and its hand-out. Like every
// console page it is answered no-store, so Back does not show it again.
func showCode(rq *Request, pt *mtmv1.Patient, code string, expires time.Time) error {
	d := codeData{Patient: pt, Code: code}
	if loc, err := time.LoadLocation(pt.GetTimeZone()); err == nil {
		expires = expires.In(loc)
	}
	d.ExpiresAt = expires.Format("01/02/2006 3:04 PM MST")
	if ph, err := rq.API.Care.GetPharmacy(rq.Context(), connect.NewRequest(&mtmv1.GetPharmacyRequest{})); err == nil {
		d.PharmacyName, d.PharmacyPhone = ph.Msg.GetPharmacy().GetName(), ph.Msg.GetPharmacy().GetPhone()
	}
	return rq.Render(http.StatusOK, "patients_code.html", View{Title: "Activation code for " + pt.GetGivenName() + " " + pt.GetFamilyName(), Nav: "patients", Data: d})
}

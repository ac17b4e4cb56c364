package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The pages beyond the inbox: patients (search, enroll, activation codes),
// the record, reviews and documents, work lists, caregivers and access,
// and pharmacy admin. Each page gathers its data through rq.API (in
// process, as the signed-in pharmacist, so the API's access checks,
// validation and audit apply) and renders one template; a change is a
// POST answered with 303 back to the page, or, when the API refuses it,
// the page again with the refusal (and for a stale version the row as it
// is now).

// patientPages registers the pages of this file group.
func (c *Console) patientPages() {
	const p = "/console/patients/{patient}"
	c.Page("GET /console/patients", servePatients)
	c.Page("POST /console/patients/search", searchPatients)
	c.Page("POST /console/patients/enroll", enrollPatient)
	c.Page("GET "+p, serveRecord)
	c.Page("POST "+p+"/code", reissueCode)
	c.Page("POST "+p+"/delete", deletePatient)
	c.Page("POST "+p+"/medicines", addMedicine)
	c.Page("POST "+p+"/medicines/{row}", changeMedicine)
	c.Page("POST "+p+"/medicines/{row}/stop", stopMedicine)
	c.Page("POST "+p+"/medicines/{row}/fills", recordFill)
	c.Page("POST "+p+"/allergies", addAllergy)
	c.Page("POST "+p+"/allergies/{row}/remove", removeAllergy)
	c.Page("POST "+p+"/other", setOther)
	c.Page("POST "+p+"/items", addItem)
	c.Page("POST "+p+"/items/{row}", changeItem)
	c.Page("POST "+p+"/plan-notes", setPlanNotes)
	c.Page("POST "+p+"/contacts", setContacts)
	c.Page("POST "+p+"/self-reports/{row}", resolveReport)
	c.Page("GET "+p+"/reviews", serveReviews)
	c.Page("POST "+p+"/reviews", recordReview)
	c.Page("POST "+p+"/reviews/{review}/delivered", summaryDelivered)
	c.Page("POST "+p+"/reviews/{review}/outcome", interventionOutcome)
	c.Page("POST "+p+"/export", exportRecord)
	c.Page("GET "+p+"/access", serveAccess)
	c.Page("POST "+p+"/access", serveAccess)
	c.Page("GET /console/worklists", serveWorklists)
	c.Page("GET /console/admin", serveAdmin)
	c.Page("POST /console/admin/pharmacy", updatePharmacy)
	c.Page("POST /console/admin/pharmacists", createPharmacist)
}

// patientPath is the record page of a patient. Patient ids are the
// store's random ids: they say nothing about the patient.
func patientPath(id string) string {
	return "/console/patients/" + url.PathEscape(id)
}

// now is the console's clock.
func (rq *Request) now() time.Time { return rq.c.cfg.Now() }

// form is a posted value with surrounding white space removed.
func (rq *Request) form(name string) string { return strings.TrimSpace(rq.R.PostFormValue(name)) }

// formValues keeps a form's values (to show a refused form's entries).
func (rq *Request) formValues(names ...string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = rq.form(n)
	}
	return out
}

// today is the calendar date now in a patient's time zone, as the API's
// "not in the future" checks count it.
func (rq *Request) today(zone string) string {
	now := rq.now()
	if loc, err := time.LoadLocation(zone); err == nil {
		now = now.In(loc)
	}
	return now.Format("2006-01-02")
}

// refused turns an API error into the form errors to show on the page
// again, with the HTTP status to answer; ok is false for errors that are
// not about the form (not_found, unavailable, …), which the page returns
// for the console's error page.
func refused(err error) (fe *FormErrors, status int, ok bool) {
	fe, ok = FormErrorsFrom(err)
	if !ok {
		return nil, 0, false
	}
	switch connect.CodeOf(err) {
	case connect.CodeAborted, connect.CodeAlreadyExists:
		status = http.StatusConflict
	case connect.CodePermissionDenied:
		status = http.StatusForbidden
	case connect.CodeResourceExhausted:
		status = http.StatusTooManyRequests
	default:
		status = http.StatusUnprocessableEntity
	}
	return fe, status, true
}

func trim(s string) string { return strings.TrimSpace(s) }

// usDate writes a YYYY-MM-DD date as MM/DD/YYYY (the order of US
// documents); anything else is returned as it is.
func usDate(d string) string {
	t, err := time.Parse("2006-01-02", d)
	if err != nil {
		return d
	}
	return t.Format("01/02/2006")
}

// option is one choice of a select or radio group.
type option struct {
	Value, Label string
}

// patientHead is the heading block every patient page shows.
type patientHead struct {
	Patient *mtmv1.Patient
	Path    string
	Current string // "record", "reviews" or "access"
}

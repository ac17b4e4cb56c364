package console

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// pages are the patient-facing work of the console beyond the inbox:
// patients, the record, reviews, work lists, access and pharmacy admin.
// Each handler gathers data through the API clients (in process, with the
// signed-in pharmacist's token, so the API's access checks, validation
// and audit apply) and renders one template; changes are POSTs answered
// with a redirect (303) or, when refused, the page with the reason.
type pages struct {
	care    mtmv1connect.CareServiceClient
	patient mtmv1connect.PatientServiceClient
	now     func() time.Time
	// host is the console around the pages: layout, session, errors.
	host pageHost
}

// pageHost is what the pages need from the console around them.
type pageHost interface {
	// base is the layout's data for a page titled title.
	base(r *http.Request, title string) pageBase
	// render writes the named page inside the layout.
	render(w http.ResponseWriter, r *http.Request, status int, name string, data any)
	// isAdmin reports whether the signed-in account is a pharmacy admin.
	isAdmin(r *http.Request) bool
}

func (pg *pages) base(r *http.Request, title string) pageBase { return pg.host.base(r, title) }
func (pg *pages) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	pg.host.render(w, r, status, name, data)
}
func (pg *pages) isAdmin(r *http.Request) bool { return pg.host.isAdmin(r) }

// routes mounts the pages on mux; every POST is CSRF-checked by the
// console's middleware before it gets here.
func (pg *pages) routes(mux *http.ServeMux) {
	const p = "/console/patients/{patient}"
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /console/patients":                     pg.servePatients,
		"POST /console/patients/search":             pg.searchPatients,
		"POST /console/patients/enroll":             pg.enrollPatient,
		"GET " + p:                                  pg.serveRecord,
		"POST " + p + "/code":                       pg.reissueCode,
		"POST " + p + "/medicines":                  pg.addMedicine,
		"POST " + p + "/medicines/{row}":            pg.changeMedicine,
		"POST " + p + "/medicines/{row}/stop":       pg.stopMedicine,
		"POST " + p + "/medicines/{row}/fills":      pg.recordFill,
		"POST " + p + "/allergies":                  pg.addAllergy,
		"POST " + p + "/allergies/{row}/remove":     pg.removeAllergy,
		"POST " + p + "/other":                      pg.setOther,
		"POST " + p + "/items":                      pg.addItem,
		"POST " + p + "/items/{row}":                pg.changeItem,
		"POST " + p + "/plan-notes":                 pg.setPlanNotes,
		"POST " + p + "/contacts":                   pg.setContacts,
		"POST " + p + "/self-reports/{row}":         pg.resolveReport,
		"GET " + p + "/reviews":                     pg.serveReviews,
		"POST " + p + "/reviews":                    pg.recordReview,
		"POST " + p + "/reviews/{review}/delivered": pg.summaryDelivered,
		"POST " + p + "/reviews/{review}/outcome":   pg.interventionOutcome,
		"POST " + p + "/export":                     pg.exportRecord,
		"GET " + p + "/access":                      pg.serveAccess,
		"POST " + p + "/access":                     pg.serveAccess,
		"GET /console/worklists":                    pg.serveWorklists,
		"GET /console/admin":                        pg.serveAdmin,
		"POST /console/admin/pharmacy":              pg.updatePharmacy,
		"POST /console/admin/pharmacists":           pg.createPharmacist,
	} {
		mux.Handle(pattern, h)
	}
}

// fail answers a page whose data could not be read: a patient that does
// not exist and one of another pharmacy get the same "no such patient"
// page (the API answers not_found for both).
func (pg *pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	data := failPage{pageBase: pg.base(r, "Not found"), Message: "There is no such patient in your pharmacy."}
	if connect.CodeOf(err) != connect.CodeNotFound {
		data.Title, data.Message = "Something went wrong", problemText(err)
	}
	pg.render(w, r, statusOf(err), "fail", data)
}

// failPage is what the fail template shows.
type failPage struct {
	pageBase
	Message string
}

// statusOf is the HTTP status a page answers a refused call with.
func statusOf(err error) int {
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition:
		return http.StatusUnprocessableEntity
	case connect.CodeAborted, connect.CodeAlreadyExists:
		return http.StatusConflict
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// today is the calendar date now in a patient's time zone (the API's
// "not in the future" checks use the same).
func (pg *pages) today(zone string) string {
	now := pg.now()
	if loc, err := time.LoadLocation(zone); err == nil {
		now = now.In(loc)
	}
	return now.Format("2006-01-02")
}

func trim(s string) string { return strings.TrimSpace(s) }

// usDate writes a YYYY-MM-DD date as MM/DD/YYYY (US documents' order);
// anything else is returned as it is.
func usDate(d string) string {
	t, err := time.Parse("2006-01-02", d)
	if err != nil {
		return d
	}
	return t.Format("01/02/2006")
}

// pageFuncs are the template functions the pages' templates use.
func pageFuncs() template.FuncMap {
	return template.FuncMap{
		"patientPath": patientPath,
		"usDate":      usDate,
		"percent":     func(f float64) string { return percent(f) },
		"rows": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		},
		"inc": func(i int) int { return i + 1 },
		"medFields": func(id string, m *mtmv1.Medication) medicineForm {
			return medicineForm{ID: id, Med: m}
		},
		"itemConflict":        func(c *recordConflict, id string) bool { return c != nil && c.Item != nil && c.Item.GetId() == id },
		"fieldLabel":          func(k string) string { return fieldLabels[k] },
		"when":                when,
		"allergyKinds":        func() []option { return allergyKinds },
		"deliveryMethods":     func() []option { return deliveryMethods },
		"problemCategories":   func() []option { return problemCategories },
		"interventionActions": func() []option { return interventionActions },
		"outcomeCodes":        func() []option { return outcomeCodes },
		"summaryMethods":      func() []option { return summaryMethods },
		"summaryRecipients":   func() []option { return summaryRecipients },
		"allergyKind":         func(v mtmv1.AllergyKind) string { return labelOf(allergyKinds, v.String()) },
		"selfKind":            func(v mtmv1.SelfMedicationKind) string { return selfKinds[v] },
		"reviewKind":          func(v mtmv1.ReviewKind) string { return reviewKinds[v] },
		"deliveryMethod":      func(v mtmv1.DeliveryMethod) string { return labelOf(deliveryMethods, v.String()) },
		"problemCategory":     func(v mtmv1.DrugTherapyProblemCategory) string { return labelOf(problemCategories, v.String()) },
		"interventionKind":    func(v mtmv1.InterventionKind) string { return interventionKinds[v] },
		"interventionAction":  func(v mtmv1.InterventionAction) string { return labelOf(interventionActions, v.String()) },
		"outcomeCode":         func(v mtmv1.InterventionOutcomeCode) string { return labelOf(outcomeCodes, v.String()) },
		"summaryMethod":       func(v mtmv1.SummaryDeliveryMethod) string { return labelOf(summaryMethods, v.String()) },
		"summaryRecipient":    func(v mtmv1.SummaryRecipient) string { return labelOf(summaryRecipients, v.String()) },
		"scopeLabel":          func(v mtmv1.CaregiverScope) string { return scopeLabels[v] },
		"roleLabel":           func(v mtmv1.Role) string { return roleLabels[v] },
		"outcomeLabel":        func(v mtmv1.AccessOutcome) string { return accessOutcomes[v] },
		"procedureLabel":      procedureLabel,
	}
}

// medicineForm is the data of the medicine-fields template.
type medicineForm struct {
	ID  string
	Med *mtmv1.Medication
}

// Package console is the pharmacist console: server-rendered HTML pages
// (html/template, assets embedded with go:embed, a little plain
// JavaScript for enhancement, no build step) that mtmd serves under
// /console/ on the API port.
//
// # One more client
//
// The console holds no second way to the data. Its only store access is
// its own sessions (store.ConsoleSessions). Every page reads and writes
// through the generated Connect clients in Request.API (Care, Messaging,
// Patient, Auth), which reach the API's own http.Handler over in-memory
// pipes, so each call passes the same interceptor chain as an app's:
// authentication with the pharmacist's own access token, audit,
// validation, throttles. The browser's address travels with the call, so
// audit events and sign-in throttles see the real client.
//
// The session (cookie "mtm_console": HttpOnly, SameSite=Strict, Secure
// under TLS, a fresh id at every sign-in) keeps the pharmacist's access
// and refresh tokens on the server, sealed with a key derived from the
// cookie; the store keeps only the id's hash. Sessions end after
// Config.IdleTimeout without a request, or at sign-out (which revokes the
// API sign-in too). Every answer carries a strict Content-Security-Policy
// (no inline script or style: put CSS in static/console.css and script in
// static/console.js), frame-ancestors 'none', Referrer-Policy no-referrer
// and nosniff; pages are Cache-Control: no-store.
//
// # Adding a page
//
// 1. Register routes. Add one line to morePages in pages.go calling your
// group's method, and write the method in its own file:
//
//	// patients.go
//	func (c *Console) patientRoutes() {
//		c.Page("GET /console/patients", c.patients)
//		c.Page("POST /console/patients/search", c.searchPatients)
//		c.Page("GET /console/patients/{id}", c.patientRecord)
//	}
//
// The layout's navigation already links /console/inbox, /console/patients,
// /console/worklists and /console/admin (View.Nav "inbox", "patients",
// "worklists", "admin" marks the current one); until a page claims a
// path it answers 404.
//
// Page requires a signed-in pharmacist (others are redirected to sign-in),
// refreshes the API tokens, and refuses any non-GET request without the
// session's CSRF token with 403 before your handler runs. No PHI in URLs:
// ids in paths are opaque; search terms are posted, never in query
// strings.
//
// 2. Write the handler. It gets a *Request: rq.Session (AccountID,
// PharmacyID, Email, Role, IsAdmin()), rq.API and rq.Context(). Call the
// API with rq.Context() — that is what makes the call the pharmacist's:
//
//	func (c *Console) patientRecord(rq *Request) error {
//		res, err := rq.API.Care.GetPatientRecord(rq.Context(),
//			connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: rq.R.PathValue("id")}))
//		if err != nil {
//			return err // not_found → 404 page, permission_denied → 403, unauthenticated → sign-in …
//		}
//		return rq.Render(http.StatusOK, "patient.html", View{Title: "Record", Nav: "patients", Data: res.Msg})
//	}
//
// 3. Write the template templates/<name>.html defining "content"; it is
// rendered inside templates/layout.html (header, navigation, <h1> from
// View.Title, View.Flash and View.Form.Message). The dot is the View:
// .Data is yours, .CSRF the form token, .Session the pharmacist, .Form
// the refusal. Every form posts the token:
//
//	{{define "content"}}
//	<form method="post" action="/console/patients/{{.Data.Patient.Id}}/allergies">
//	  <input type="hidden" name="csrf" value="{{.CSRF}}">
//	  <label for="substance">Substance</label>
//	  <input id="substance" name="substance" value="…">
//	  {{with .Form.Field "allergy.substance"}}<p class="field-error" id="substance-error">{{.}}</p>{{end}}
//	  <button type="submit">Add allergy</button>
//	</form>
//	{{end}}
//
// (.Form.Field is safe on a nil Form.) Inside {{range}} use $.CSRF.
//
// 4. Handle the API's refusals of a form. On error, FormErrorsFrom(err)
// returns the refusals a pharmacist can act on — invalid_argument (Fields
// maps the request's field path, e.g. "allergy.substance", to the
// message), aborted (Stale: someone else changed the record; re-read it
// and show the current row), already_exists, failed_precondition,
// permission_denied (Denied), resource_exhausted — and the page renders
// the form again with them; anything else is returned as it is:
//
//	_, err := rq.API.Care.AddAllergy(rq.Context(), connect.NewRequest(req))
//	if f, ok := FormErrorsFrom(err); ok {
//		current, rerr := … // on f.Stale, read the record again
//		return rq.Render(http.StatusUnprocessableEntity, "patient.html", View{…, Data: current, Form: f})
//	}
//	if err != nil {
//		return err
//	}
//	return rq.Redirect("/console/patients/" + id) // 303 after a successful POST
//
// 5. Idempotent writes: a form that creates something carries a token
// made once when the form is rendered (see newFormToken and the reply
// form in thread.go), sent as the API's client id, so a double submit
// creates one thing.
//
// 6. Test it with the harness in console_test.go — newEnv assembles the
// API (its interceptors, bbolt, a test clock) with the console; browser
// is a cookie jar with signIn, do and token — and, for what needs a real
// browser, in TestConsoleInBrowser (cmd/mtmd/console_test.go: headless
// Chromium against a real mtmd; one browser per test binary, so add steps
// or tabs to it rather than new browsers).
package console

package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// pageTab is a tab of its own (tab registers the event listener chromedp
// needs to see loads after a form's navigation).
func pageTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	return tab(t, browser)
}

// pngShot saves the whole page as backend/console/screenshots/<name>.png, like
// screenshot, as PNG (chromedp encodes JPEG below quality 100).
func pngShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := see(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "backend", "console", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// submit clicks the submit button sel and waits for the next page.
func submit(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.before = "1"`),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitNotPresent(chromedp.CSS("body[data-before]")),
		chromedp.WaitReady(chromedp.CSS("main")))
}

// signInByPassword signs a pharmacist of a pharmacy that does not require
// the second factor into the console in tab.
func signInByPassword(t *testing.T, tab context.Context, base, email string) {
	t.Helper()
	browse(t, tab, "sign in as "+email,
		chromedp.Navigate(base+"signin"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), consolePassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#inbox")))
}

// unlabelledControls lists the form controls of the page that a screen
// reader could not name (no <label>, aria-label or aria-labelledby).
const unlabelledControls = `[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
  .filter(e => e.labels.length === 0 && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
  .map(e => e.name || e.id)`

// overflowsAt200 reports whether the page is wider than a 1366×768 window
// at 200% zoom (683 CSS pixels): content that would need sideways
// scrolling of the whole page. Wide tables scroll inside themselves.
func overflowsAt200(t *testing.T, tab context.Context, what string) {
	t.Helper()
	browse(t, tab, "zoom to 200%", chromedp.EmulateViewport(683, 384))
	w := see(t, tab, "page width at 200%", chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	browse(t, tab, "zoom back", chromedp.EmulateViewport(1366, 768))
	if w > 683 {
		t.Errorf("%s is %d CSS px wide at 200%% zoom of 1366×768 (683 px): the whole page scrolls sideways", what, w)
	}
}

// checkAccessible asserts that every control of the page has a name and
// that the page reads at 200% zoom without sideways scrolling.
func checkAccessible(t *testing.T, tab context.Context, what string) {
	t.Helper()
	if bad := see(t, tab, "labels of "+what, chromedp.Evaluate[[]string](unlabelledControls)); len(bad) > 0 {
		t.Errorf("%s has controls without a label: %v", what, bad)
	}
	overflowsAt200(t, tab, what)
}

// download submits the form matched by sel from the page, as the browser
// would, and returns the answer's status, headers and body.
func download(t *testing.T, tab context.Context, sel string) (int, map[string]string, []byte) {
	t.Helper()
	type answer struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	a := see(t, tab, "download", chromedp.Evaluate[answer](`(async () => {
  const f = document.querySelector(`+"`"+sel+"`"+`);
  const r = await fetch(f.action, {method: "POST", body: new URLSearchParams(new FormData(f))});
  const buf = new Uint8Array(await r.arrayBuffer());
  let s = ""; for (const b of buf) s += String.fromCharCode(b);
  return {status: r.status, headers: Object.fromEntries(r.headers.entries()), body: btoa(s)};
})()`, chromedp.EvalAwaitPromise))
	body, err := base64.StdEncoding.DecodeString(a.Body)
	if err != nil {
		t.Fatal(err)
	}
	return a.Status, a.Headers, body
}

// TestConsolePatientPagesInBrowser drives the patient pages in headless
// Chromium against a real mtmd: enroll a patient (the code shown once with
// its hand-out), add a medicine, change it from two sessions (the second,
// stale, sees the conflict and the current row, and nothing of it is
// saved), record a CMR and download the CMS PDF (its text names the
// medicine), read the work lists; a pharmacist of another pharmacy who
// opens the patient's page by its id sees nothing of it, and the refusal
// enters the patient's access report. The record is used by keyboard
// alone to open "Add a medicine"; every control of the main pages has a
// label, and no page is wider than 1366×768 at 200% zoom. Screenshots of the record, the
// review and the work lists are written to backend/console/screenshots/.
func TestConsolePatientPagesInBrowser(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Skip("pdftotext is not installed (apt-get install -y poppler-utils)")
	}
	browser := newBrowser(t)
	ctx := t.Context()

	srv := twoPharmacies(t)
	base := srv.api + "/console/"

	// Session 1 enrolls a patient.
	a1 := pageTab(t, browser)
	signInByPassword(t, a1, base, "rph@a.test")
	browse(t, a1, "patients page", chromedp.Navigate(base+"patients"), chromedp.WaitVisible(chromedp.CSS("#given")))
	browse(t, a1, "enroll form",
		chromedp.SendKeys(chromedp.CSS("#given"), "Rosa"),
		chromedp.SendKeys(chromedp.CSS("#family"), "Marquez"),
		chromedp.SetValue(chromedp.CSS("#dob"), "1951-06-02"),
		chromedp.SetValue(chromedp.CSS("#tz"), "America/Chicago"))
	browse(t, a1, "enroll", chromedp.Click(chromedp.CSS(`form[action$="/enroll"] button[type=submit]`)), chromedp.WaitVisible(chromedp.CSS(".handout .code")))
	code := see(t, a1, "activation code", chromedp.Text(chromedp.CSS(".handout .code")))
	if !regexp.MustCompile(`^[0-9A-Z]{4}(-[0-9A-Z]{4})+$`).MatchString(strings.TrimSpace(code)) {
		t.Errorf("the hand-out shows %q, not an activation code", code)
	}
	printed := see(t, a1, "print style", chromedp.Evaluate[[]string](`[...document.styleSheets].flatMap(s => [...s.cssRules]).filter(r => r.media && r.media.mediaText === "print").map(r => r.cssText)`))
	if len(printed) == 0 || !strings.Contains(strings.Join(printed, "\n"), "header.top") {
		t.Errorf("no print style sheet hides the console around the hand-out: %v", printed)
	}
	browse(t, a1, "to the record", chromedp.Click(chromedp.CSS(`.no-print a`)), chromedp.WaitVisible(chromedp.CSS("#pml-h")))
	recordURL := see(t, a1, "record URL", chromedp.Location())
	pid := strings.TrimPrefix(recordURL, base+"patients/")
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(pid) || strings.Contains(strings.ToLower(pid), "rosa") {
		t.Fatalf("record URL %q: want an opaque id", recordURL)
	}

	browse(t, a1, "add a medicine",
		chromedp.Click(chromedp.CSS("#add-medicine > summary")),
		chromedp.SendKeys(chromedp.CSS("#name-new"), "Atorvastatin"),
		chromedp.SendKeys(chromedp.CSS("#strength-new"), "20 mg tablet"),
		chromedp.SendKeys(chromedp.CSS("#how-new"), "1 tablet at bedtime"),
		chromedp.SendKeys(chromedp.CSS("#why-new"), "Cholesterol"),
		chromedp.SendKeys(chromedp.CSS("#prescriber-new"), "Dr. Patel"),
		submit("#add-medicine button[type=submit]"))
	medID := see(t, a1, "the new row", chromedp.Evaluate[string](`document.querySelector("table.pml tbody tr[id^=med-]").id.slice(4)`))

	// Session 2 opens the same record; session 1 changes the dose first.
	a2 := pageTab(t, browser)
	signInByPassword(t, a2, base, "rph@a.test")
	browse(t, a2, "open the record", chromedp.Navigate(recordURL), chromedp.WaitVisible(chromedp.CSS("#med-"+medID)))
	changeDose := func(tab context.Context, how, why string) {
		t.Helper()
		browse(t, tab, "change the dose to "+how,
			chromedp.Click(chromedp.CSS(`#med-`+medID+` + tr details > summary`)),
			chromedp.Clear(chromedp.CSS("#how-"+medID)),
			chromedp.SendKeys(chromedp.CSS("#how-"+medID), how),
			chromedp.SendKeys(chromedp.CSS("#reason-"+medID), why),
			submit(`form[action$="/medicines/`+medID+`"] button[type=submit]`))
	}
	changeDose(a1, "2 tablets at bedtime", "LDL above goal")
	if f := see(t, a1, "flash", chromedp.Text(chromedp.CSS(".flash"))); f != "Medicine changed." {
		t.Fatalf("session 1's change: %q", f)
	}
	changeDose(a2, "1 tablet in the morning", "patient prefers mornings")
	browse(t, a2, "the conflict", chromedp.WaitVisible(chromedp.CSS("#conflict")))
	conflict := see(t, a2, "conflict text", chromedp.Text(chromedp.CSS("#conflict")))
	for _, want := range []string{"Someone else changed this medicine", "not saved", "2 tablets at bedtime", "1 tablet in the morning", "Version\n2"} {
		if !strings.Contains(conflict, want) {
			t.Errorf("the stale session's conflict lacks %q:\n%s", want, conflict)
		}
	}
	if v := see(t, a2, "the form's version", chromedp.Evaluate[string](`document.querySelector('form[action$="/medicines/`+medID+`"] input[name=version]').value`)); v != "2" {
		t.Errorf("after the conflict the change form carries version %q, want the current 2", v)
	}
	pngShot(t, a2, "record-conflict")

	// Nothing of the stale edit was saved.
	login, err := mtmv1connect.NewAuthServiceClient(http.DefaultClient, srv.api).Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "rph@a.test", Password: consolePassword}))
	if err != nil {
		t.Fatal(err)
	}
	care := mtmv1connect.NewCareServiceClient(http.DefaultClient, srv.api, connect.WithInterceptors(bearerAuth(login.Msg.GetTokens().GetAccessToken())))
	rec, err := care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: pid}))
	if err != nil {
		t.Fatal(err)
	}
	if m := rec.Msg.GetMedicationList().GetMedications()[0]; m.GetHowIUseIt() != "2 tablets at bedtime" || m.GetVersion() != 2 {
		t.Fatalf("after the conflict the row is %q at version %d", m.GetHowIUseIt(), m.GetVersion())
	}

	// Fills far apart, so the patient falls below 80% PDC.
	today := time.Now().In(mustZone(t, "America/Chicago"))
	for _, back := range []int{150, 100} {
		if _, err := care.RecordFill(ctx, connect.NewRequest(&mtmv1.RecordFillRequest{PatientId: pid, MedicationId: medID,
			FilledOn: today.AddDate(0, 0, -back).Format("2006-01-02"), DaysSupply: 30})); err != nil {
			t.Fatal(err)
		}
	}
	browse(t, a1, "the record", chromedp.Navigate(recordURL), chromedp.WaitVisible(chromedp.CSS("#pml-h")))
	pngShot(t, a1, "record")
	checkAccessible(t, a1, "the record")

	// By keyboard alone: Tab reaches "Add a medicine", Enter opens it and
	// the next Tab is in its first field.
	reached := false
	for range 80 {
		browse(t, a1, "Tab", chromedp.KeyEvent("\t"))
		if see(t, a1, "focus", chromedp.Evaluate[bool](`document.activeElement === document.querySelector("#add-medicine > summary")`)) {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("80 presses of Tab did not reach \"Add a medicine\"")
	}
	browse(t, a1, "Enter, Tab", chromedp.KeyEvent("\r"), chromedp.KeyEvent("\t"))
	if f := see(t, a1, "focus", chromedp.Evaluate[string](`document.querySelector("#add-medicine").open + " " + document.activeElement.id`)); f != "true name-new" {
		t.Errorf("after Enter and Tab on \"Add a medicine\": open and focus %q, want \"true name-new\"", f)
	}

	// A CMR, documented in session 1, then its PDF.
	browse(t, a1, "document a CMR",
		chromedp.Click(chromedp.CSS(`nav.subnav a[href$="/reviews"]`)),
		chromedp.WaitVisible(chromedp.CSS("#delivery")),
		chromedp.SetValue(chromedp.CSS("#delivery"), "DELIVERY_METHOD_TELEPHONE"),
		chromedp.SetValue(chromedp.CSS("#problem-cat-0"), "DRUG_THERAPY_PROBLEM_CATEGORY_ADHERENCE"),
		chromedp.SendKeys(chromedp.CSS("#problem-desc-0"), "Gaps between atorvastatin fills"),
		chromedp.SetValue(chromedp.CSS("#int-kind-0"), "INTERVENTION_KIND_INTERVENTION"),
		chromedp.SetValue(chromedp.CSS("#int-action-0"), "INTERVENTION_ACTION_COUNSELLED_PATIENT"),
		chromedp.SendKeys(chromedp.CSS("#int-desc-0"), "Set up automatic refills and a pill box"),
		chromedp.SetValue(chromedp.CSS("#follow-up-on"), today.AddDate(0, 0, 14).Format("2006-01-02")),
		submit(`form.review-form button[type=submit]`))
	reviewText := see(t, a1, "the review", chromedp.Text(chromedp.CSS("#list-h + article")))
	for _, want := range []string{"Comprehensive Medication Review", "Telephone", "Adherence: Gaps between atorvastatin fills", "Set up automatic refills", "Written summary due by"} {
		if !strings.Contains(reviewText, want) {
			t.Errorf("the recorded review lacks %q:\n%s", want, reviewText)
		}
	}
	pngShot(t, a1, "review")
	checkAccessible(t, a1, "the reviews page")

	status, headers, pdf := download(t, a1, `form[data-download]:has(input[value=pdf])`)
	if status != http.StatusOK || headers["content-type"] != "application/pdf" || !strings.HasPrefix(headers["content-disposition"], "attachment") ||
		headers["cache-control"] != "no-store" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("PDF download: %d %v, starts %q", status, headers, pdf[:min(len(pdf), 8)])
	}
	pdfPath := filepath.Join(t.TempDir(), "summary.pdf")
	if err := os.WriteFile(pdfPath, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command("pdftotext", "-layout", pdfPath, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	for _, want := range []string{"Atorvastatin", "2 tablets at bedtime", "Rosa"} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("the downloaded PDF's text lacks %q", want)
		}
	}
	status, headers, fhir := download(t, a1, `form[data-download]:has(input[value=fhir])`)
	if status != http.StatusOK || headers["content-type"] != "application/fhir+json" || !bytes.Contains(fhir, []byte(`"resourceType"`)) {
		t.Fatalf("FHIR download: %d %v", status, headers)
	}

	// A second patient, enrolled through the API, is due for a CMR.
	if _, err := care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: "Walter", FamilyName: "Brandt",
		DateOfBirth: "1944-11-23", TimeZone: "America/New_York"})); err != nil {
		t.Fatal(err)
	}
	browse(t, a1, "work lists", chromedp.Navigate(base+"worklists"), chromedp.WaitVisible(chromedp.CSS("#cmr-h")))
	due := see(t, a1, "due for a CMR", chromedp.Text(chromedp.CSS("#cmr-h + table")))
	if !strings.Contains(due, "Brandt, Walter") || strings.Contains(due, "Marquez") {
		t.Errorf("due for a CMR (Walter never had one, Rosa just had hers):\n%s", due)
	}
	low := see(t, a1, "below 80% PDC", chromedp.Text(chromedp.CSS(`section[aria-labelledby="pdc-h"]`)))
	if !strings.Contains(low, "Marquez, Rosa") {
		t.Errorf("below 80%% PDC lacks Rosa (two 30-day fills 50 days apart):\n%s", low)
	}
	pngShot(t, a1, "worklists")
	checkAccessible(t, a1, "the work lists")

	// Pharmacy B's pharmacist, given the id, sees nothing.
	b := pageTab(t, browser)
	signInByPassword(t, b, base, "rph@b.test")
	for _, path := range []string{"", "/reviews", "/access"} {
		browse(t, b, "A's patient"+path, chromedp.Navigate(recordURL+path), chromedp.WaitReady(chromedp.CSS("main")))
		seen := see(t, b, "what B sees", chromedp.Text(chromedp.CSS("main")))
		if !strings.Contains(seen, "Not found") || strings.Contains(seen, "Rosa") || strings.Contains(seen, "Atorvastatin") {
			t.Errorf("pharmacy B opening %s got:\n%s", recordURL+path, seen)
		}
	}
	// The refusal is in the patient's access report, which A reads.
	browse(t, a1, "access report", chromedp.Navigate(recordURL+"/access"), chromedp.WaitVisible(chromedp.CSS("#log-h")))
	report := see(t, a1, "access report", chromedp.Text(chromedp.CSS("table.access-log")))
	if !strings.Contains(report, "refused") {
		t.Errorf("the access report does not show pharmacy B's refused look:\n%s", report)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

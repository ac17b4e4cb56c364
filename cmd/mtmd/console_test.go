package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store/backends"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

const consolePassword = "a long pharmacist password"

// bearerAuth sends an access token with every call.
type bearerAuth string

func (b bearerAuth) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}
func (b bearerAuth) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}
func (b bearerAuth) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// newBrowser starts one headless Chromium for the test (a fresh profile)
// at a laptop's 1366×768.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 768),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(browser); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return browser
}

// tab opens a tab in a browser context of its own (its own cookies).
func tab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first run creates the tab, which lives as long as that run's
	// context: so no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	// With no listener on its events, chromedp (v0.23) may never see a
	// page load after a navigation by a form, and the next action waits
	// until its deadline.
	if err := chromedp.Listen(ctx, func(any) {}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func browse(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	see(t, ctx, what, chromedp.Steps(steps...))
}

// get runs one action (20 s at most) and returns its value; on failure it
// shows where the browser is and what it shows.
func see[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		body, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, body)
	}
	return v
}

// waitState waits (20 s at most) until the thread page's state reads
// want: a click that submits a form returns before the next page loads.
func waitState(t *testing.T, ctx context.Context, when, want string) {
	t.Helper()
	waitText(t, ctx, "#thread-state", when, want)
}

// waitFlash waits until the page's confirmation reads want.
func waitFlash(t *testing.T, ctx context.Context, when, want string) {
	t.Helper()
	waitText(t, ctx, ".flash", when, want)
}

func waitText(t *testing.T, ctx context.Context, selector, when, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		got = see(t, ctx, when, chromedp.Evaluate[string](`(document.querySelector(`+"`"+selector+"`"+`)?.textContent ?? "").trim()`))
		if got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s, %s says %q, want %q", when, selector, got, want)
}

// screenshot saves the page as backend/console/screenshots/<name>.png (the README shows
// them).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	// A tab in the background draws no frames: bring it to the front first.
	front := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.BringToFront, cdp.Empty{})
		return err
	})
	browse(t, ctx, "bring "+name+" to the front", front)
	png := see(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "backend", "console", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// postWithoutToken posts from the page (same origin, with the session
// cookie) without the CSRF token and returns the status.
func postWithoutToken(t *testing.T, ctx context.Context, path string) int {
	t.Helper()
	return see(t, ctx, "CSRF-less POST", chromedp.Evaluate[int](`fetch(`+"`"+path+"`"+`, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "body=hello"}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
}

// twoPharmacies starts mtmd on a fresh bbolt store holding two
// pharmacies, each with an admin pharmacist: rph@a.test and rph@b.test
// (password consolePassword).
func twoPharmacies(t *testing.T) running {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	st, _, err := backends.Open(ctx, backends.Settings{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{"Main Street Pharmacy", "rph@a.test"}, {"Other Town Pharmacy", "rph@b.test"}} {
		if _, _, err := bootstrap.CreatePharmacy(ctx, st, time.Now(), p[0], p[1], consolePassword, "Ana Ortiz, PharmD"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir)
	return srv
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// real mtmd on bbolt: sign-in with the second factor the pharmacy
// requires, a patient's question arriving live in the inbox, claim, reply
// (one message for a double submit, received by the patient's
// WatchThread), close; a POST without the CSRF token refused; another
// pharmacy's pharmacist, signing in by keyboard alone, sees nothing of it.
func TestConsoleInBrowser(t *testing.T) {
	browser := newBrowser(t)
	ctx := t.Context()

	srv := twoPharmacies(t)
	hc := http.DefaultClient

	// Pharmacy A enrols a patient (through the API) and requires the
	// second factor; the patient activates the app.
	login, err := mtmv1connect.NewAuthServiceClient(hc, srv.api).Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "rph@a.test", Password: consolePassword}))
	if err != nil {
		t.Fatal(err)
	}
	care := mtmv1connect.NewCareServiceClient(hc, srv.api, connect.WithInterceptors(bearerAuth(login.Msg.GetTokens().GetAccessToken())))
	enrolled, err := care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: "Margaret", FamilyName: "Lee",
		DateOfBirth: "1948-03-12", TimeZone: "America/Chicago"}))
	if err != nil {
		t.Fatal(err)
	}
	pid := enrolled.Msg.GetPatient().GetId()
	if _, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pid, Medication: &mtmv1.MedicationFields{
		Name: "Metformin", Strength: "500 mg", HowIUseIt: "1 tablet twice a day with meals"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := care.AddAllergy(ctx, connect.NewRequest(&mtmv1.AddAllergyRequest{PatientId: pid, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY,
		Substance: "Penicillin", Reaction: "hives"})); err != nil {
		t.Fatal(err)
	}
	if _, err := care.UpdatePharmacy(ctx, connect.NewRequest(&mtmv1.UpdatePharmacyRequest{Name: "Main Street Pharmacy", RequireSecondFactor: new(true)})); err != nil {
		t.Fatal(err)
	}
	act, err := mtmv1connect.NewAuthServiceClient(hc, srv.api).ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{
		ActivationCode: enrolled.Msg.GetActivationCode(), DateOfBirth: "1948-03-12", DeviceName: "Margaret's phone"}))
	if err != nil {
		t.Fatal(err)
	}
	patient := mtmv1connect.NewMessagingServiceClient(hc, srv.api, connect.WithInterceptors(bearerAuth(act.Msg.GetTokens().GetAccessToken())))

	// The API itself now refuses pharmacy A's staff without a code.
	_, err = mtmv1connect.NewAuthServiceClient(hc, srv.api).Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "rph@a.test", Password: consolePassword}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("API login without the required second factor: %v", err)
	}

	a := tab(t, browser)
	base := srv.api + "/console/"
	browse(t, a, "sign-in page",
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.CSS("#email")))
	screenshot(t, a, "signin")
	browse(t, a, "password, then the enrolment of the required second factor",
		chromedp.SendKeys(chromedp.CSS("#email"), "rph@a.test"),
		chromedp.SendKeys(chromedp.CSS("#password"), consolePassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
	secret := see(t, a, "the secret shown", chromedp.Text(chromedp.CSS("#totp-secret")))
	code, err := auth.TOTPCode(strings.ReplaceAll(secret, " ", ""), time.Now())
	if err != nil {
		t.Fatalf("the page's secret %q: %v", secret, err)
	}
	browse(t, a, "first code, then the live inbox",
		chromedp.SendKeys(chromedp.CSS("#code"), code),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS(`#inbox[data-live="on"]`)))

	// The patient asks; the question appears without a reload.
	started := time.Now()
	th, err := patient.StartThread(ctx, connect.NewRequest(&mtmv1.StartThreadRequest{PatientId: pid, Subject: "Dizzy after the new dose",
		ClientMessageId: "cm_browser_test_1", Body: "I feel dizzy in the mornings since the new metformin dose. Should I worry?"}))
	if err != nil {
		t.Fatal(err)
	}
	tid := th.Msg.GetThread().GetId()
	browse(t, a, "question appears live", chromedp.WaitVisible(chromedp.CSS(`li[data-thread="`+tid+`"]`)))
	if d := time.Since(started); d > 2*time.Second {
		t.Errorf("the question took %v to appear in the inbox, want at most 2s", d)
	} else {
		t.Logf("question live in the inbox after %v", d.Round(time.Millisecond))
	}
	row := see(t, a, "inbox row", chromedp.Text(chromedp.CSS(`li[data-thread="`+tid+`"]`)))
	for _, want := range []string{"Margaret Lee", "Dizzy after the new dose", "Patient", "1 unread"} {
		if !strings.Contains(row, want) {
			t.Errorf("inbox row %q lacks %q", row, want)
		}
	}
	screenshot(t, a, "inbox")
	// Showing the queue (and updating it live) read no record: the
	// patient's "who accessed my record" report has no pharmacist in it yet.
	report, err := mtmv1connect.NewPatientServiceClient(hc, srv.api, connect.WithInterceptors(bearerAuth(act.Msg.GetTokens().GetAccessToken()))).
		ListAccessEvents(ctx, connect.NewRequest(&mtmv1.ListAccessEventsRequest{PatientId: pid}))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range report.Msg.GetEvents() {
		if ev.GetActorId() == login.Msg.GetAccountId() && ev.GetProcedure() != "/mtm.v1.CareService/EnrollPatient" &&
			!strings.HasPrefix(ev.GetProcedure(), "/mtm.v1.CareService/Add") && ev.GetProcedure() != "/mtm.v1.CareService/UpdatePharmacy" {
			t.Errorf("showing the inbox left %s by the pharmacist in the patient's access report", ev.GetProcedure())
		}
	}

	// The patient's app watches the thread.
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch, err := patient.WatchThread(watchCtx, connect.NewRequest(&mtmv1.WatchThreadRequest{ThreadId: tid, AfterSeq: 1}))
	if err != nil {
		t.Fatal(err)
	}
	replies := make(chan *mtmv1.Message, 8)
	go func() {
		for watch.Receive() {
			if m := watch.Msg().GetMessage(); m != nil {
				replies <- m
			}
		}
	}()

	browse(t, a, "open the thread and claim it",
		chromedp.Click(chromedp.CSS(`li[data-thread="`+tid+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS("#claim")),
		chromedp.Click(chromedp.CSS("#claim")))
	waitState(t, a, "after claiming", "Claimed by you")
	const reply = "Dizziness is not usual with metformin. Please check your blood sugar and call us today."
	threadPath := see(t, a, "reply form", chromedp.Evaluate[string](`new URL(document.getElementById("reply-form").action).pathname`))
	browse(t, a, "type the reply", chromedp.SendKeys(chromedp.CSS("#body"), reply))
	// The same form posted once behind the page's back (as a browser
	// without JavaScript would on a double-click), then double-clicked:
	// the form's client message id makes it one message.
	if s := see(t, a, "post the form once", chromedp.Evaluate[int](`(() => { const f = document.getElementById("reply-form");
		return fetch(f.action, {method: "POST", body: new URLSearchParams(new FormData(f))}).then(r => r.status) })()`, chromedp.EvalAwaitPromise)); s != http.StatusOK {
		t.Fatalf("posting the reply form answered %d", s)
	}
	browse(t, a, "reply, double-clicking Send",
		chromedp.DoubleClick(chromedp.CSS("#send")))
	waitFlash(t, a, "after the reply", "Reply sent.")
	screenshot(t, a, "thread")
	select {
	case m := <-replies:
		if m.GetBody() != reply {
			t.Fatalf("the patient's WatchThread got %q", m.GetBody())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the patient's WatchThread did not receive the reply")
	}
	msgs, err := patient.ListMessages(ctx, connect.NewRequest(&mtmv1.ListMessagesRequest{ThreadId: tid}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(msgs.Msg.GetMessages()); n != 2 {
		t.Fatalf("the thread holds %d messages after one reply (double-clicked), want 2", n)
	}

	// A POST without the form token is refused, even from the page.
	if s := postWithoutToken(t, a, strings.TrimSuffix(threadPath, "/reply")+"/close"); s != http.StatusForbidden {
		t.Fatalf("CSRF-less POST answered %d, want 403", s)
	}
	browse(t, a, "close the thread",
		chromedp.Click(chromedp.CSS("#close")))
	waitState(t, a, "after closing", "Closed")

	// Pharmacy B's pharmacist, by keyboard alone, sees nothing of it.
	b := tab(t, browser)
	browse(t, b, "sign-in page", chromedp.Navigate(base+"signin"), chromedp.WaitVisible(chromedp.CSS("#email")))
	focused := see(t, b, "focus", chromedp.Evaluate[string](`document.activeElement.id`))
	browse(t, b, "keyboard-only sign-in",
		chromedp.KeyEvent("rph@b.test"),
		chromedp.KeyEvent("\t"),
		chromedp.KeyEvent(consolePassword),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`#inbox[data-live="on"]`)))
	inboxText := see(t, b, "B's inbox", chromedp.Text(chromedp.CSS("main")))
	browse(t, b, "A's thread", chromedp.Navigate(srv.api+strings.TrimSuffix(threadPath, "/reply")))
	threadText := see(t, b, "A's thread page", chromedp.Text(chromedp.CSS("main")))
	if focused != "email" {
		t.Errorf("the sign-in page focuses %q first, want the e-mail field", focused)
	}
	if strings.Contains(inboxText, "Margaret") || strings.Contains(inboxText, "Dizzy") {
		t.Errorf("pharmacy B's inbox shows pharmacy A's thread:\n%s", inboxText)
	}
	if !strings.Contains(threadText, "Not found") || strings.Contains(threadText, "Dizzy") || strings.Contains(threadText, "Margaret") {
		t.Errorf("pharmacy B opening A's thread got:\n%s", threadText)
	}
}

package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// wantReason fails the test unless ce carries a google.rpc.ErrorInfo with
// reason in the API's domain.
func wantReason(t *testing.T, ce *connect.Error, reason string) {
	t.Helper()
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok && info.GetDomain() == api.ErrorDomain {
				if info.GetReason() != reason {
					t.Fatalf("ErrorInfo reason %q, want %q", info.GetReason(), reason)
				}
				return
			}
		}
	}
	t.Fatalf("%v carries no ErrorInfo, want reason %q", ce, reason)
}

// from sends X-Forwarded-For: addr, as a proxy in front of the server would.
type from string

func (f from) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("X-Forwarded-For", string(f))
		return next(ctx, req)
	}
}
func (f from) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}
func (f from) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (e *env) authClientFrom(xff string) mtmv1connect.AuthServiceClient {
	return mtmv1connect.NewAuthServiceClient(e.srv.Client(), e.srv.URL, append([]connect.ClientOption{connect.WithInterceptors(from(xff))}, e.opts...)...)
}

func loginWith(c mtmv1connect.AuthServiceClient, email, password, device string) (*connect.Response[mtmv1.LoginResponse], error) {
	return c.Login(context.Background(), connect.NewRequest(&mtmv1.LoginRequest{Email: email, Password: password, DeviceToken: device}))
}

// TestCorrectSignInsAreNotThrottled: only failures count. Before the fix
// the 11th correct login in 15 minutes and the 21st activation from one
// address were refused.
func TestCorrectSignInsAreNotThrottled(t *testing.T) {
	e := newEnv(t)
	rph := e.pharmacy("ph_a", "rph@a.test")
	for i := range 40 {
		if _, err := loginWith(e.authClient(), "rph@a.test", "correct horse battery", ""); err != nil {
			t.Fatalf("correct login %d within one window: %v", i+1, err)
		}
	}
	for i := range 30 {
		e.enroll(rph, fmt.Sprintf("P%d", i)) // fails the test on any refusal
	}
	// A success clears the account's failures: 9 wrong, 1 right, 9 wrong
	// more are all answered as wrong passwords, not throttled.
	for round := range 2 {
		for range 9 {
			_, err := loginWith(e.authClient(), "rph@a.test", "wrong", "")
			wantCode(t, err, connect.CodeUnauthenticated)
		}
		if round == 0 {
			if _, err := loginWith(e.authClient(), "rph@a.test", "correct horse battery", ""); err != nil {
				t.Fatalf("correct login after 9 failures: %v", err)
			}
		}
	}
}

// TestOwnerCannotBeLockedOut: failures from unknown clients exhaust the
// account's budget for unknown clients, but a client holding the device
// token of an earlier sign-in has its own budget and still signs in. The
// guesses an attacker without a device token gets at one account in a day
// are bounded.
func TestOwnerCannotBeLockedOut(t *testing.T) {
	e := newEnv(t)
	e.pharmacy("ph_a", "rph@a.test")
	e.pharmacy("ph_b", "other@b.test")
	owner, err := loginWith(e.authClient(), "rph@a.test", "correct horse battery", "")
	if err != nil {
		t.Fatal(err)
	}
	device := owner.Msg.GetDeviceToken()
	if device == "" {
		t.Fatal("login returned no device token")
	}
	otherDevice := func() string {
		r, err := loginWith(e.authClient(), "other@b.test", "correct horse battery", "")
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg.GetDeviceToken()
	}()

	var last error
	for range 11 {
		_, last = loginWith(e.authClient(), "rph@a.test", "guess", "")
	}
	ce := wantCode(t, last, connect.CodeResourceExhausted)
	if ce.Meta().Get("Retry-After") == "" {
		t.Fatal("throttled answer carries no Retry-After")
	}
	_, err = loginWith(e.authClient(), "rph@a.test", "correct horse battery", "")
	wantCode(t, err, connect.CodeResourceExhausted) // an unknown client waits
	_, err = loginWith(e.authClient(), "rph@a.test", "correct horse battery", otherDevice)
	wantCode(t, err, connect.CodeResourceExhausted) // another account's device token is no help
	if _, err := loginWith(e.authClient(), "rph@a.test", "correct horse battery", device); err != nil {
		t.Fatalf("the owner's device was locked out by others' failures: %v", err)
	}
	// A device's own failures lock only that device.
	for range 10 {
		_, err := loginWith(e.authClient(), "rph@a.test", "typo", device)
		wantCode(t, err, connect.CodeUnauthenticated)
	}
	_, err = loginWith(e.authClient(), "rph@a.test", "correct horse battery", device)
	wantCode(t, err, connect.CodeResourceExhausted)

	// An attacker without a device token, guessing all day at full speed.
	guesses := 0
	start := e.clock.Now()
	for e.clock.Now().Before(start.Add(24 * time.Hour)) {
		for {
			_, err := loginWith(e.authClient(), "rph@a.test", "guess", "")
			if connect.CodeOf(err) == connect.CodeResourceExhausted {
				break
			}
			wantCode(t, err, connect.CodeUnauthenticated)
			guesses++
		}
		e.clock.Advance(15 * time.Minute)
	}
	if guesses > 100 { // 50 per UTC day, and 24 hours span two of them
		t.Fatalf("an attacker without a device token got %d password checks at one account in 24 h, want ≤ 100", guesses)
	}
	t.Logf("password checks an unknown client got at one account in 24 h: %d", guesses)
}

// TestClientAddressBehindProxy: behind a trusted proxy the client is the
// rightmost untrusted X-Forwarded-For hop, so one client's failures do not
// throttle another; without trust the header is ignored.
func TestClientAddressBehindProxy(t *testing.T) {
	st := newEnv(t).store // a fresh embedded store for the proxied server
	e := newEnvBehind(t, st, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	guess := 0
	activate := func(c mtmv1connect.AuthServiceClient) error {
		guess++ // a fresh wrong code each time, so only the address budget counts
		_, err := c.ActivatePatient(context.Background(), connect.NewRequest(&mtmv1.ActivatePatientRequest{
			ActivationCode: fmt.Sprintf("ZZZZ-ZZZZ-%04d", guess), DateOfBirth: "1950-06-01", DeviceName: "phone"}))
		return err
	}
	attacker := e.authClientFrom("198.51.100.66, 203.0.113.7") // the left entry is the client's own claim
	var last error
	for range 21 {
		last = activate(attacker)
	}
	wantCode(t, last, connect.CodeResourceExhausted)
	rph := e.pharmacy("ph_a", "rph@a.test")
	e.enroll(rph, "Ann") // from 127.0.0.1 without a header: not throttled
	wantCode(t, activate(e.authClientFrom("203.0.113.8")), connect.CodeUnauthenticated)
	wantCode(t, activate(e.authClientFrom("198.51.100.66")), connect.CodeUnauthenticated) // the spoofed address holds no failures

	var events []store.AuditEvent
	for _, ev := range e.archive.all() {
		if ev.Reason != "" {
			events = append(events, ev)
		}
	}
	if len(events) < 21 || events[0].ClientAddr != "203.0.113.7" || events[0].Reason != "unknown_code" || events[20].Reason != "throttled" {
		t.Fatalf("archive holds %d failed activations, first %+v; want the 21 attempts from 203.0.113.7 with their reasons", len(events), events[0])
	}

	// Without trusted proxies the header means nothing.
	plain := newEnv(t)
	for i := range 20 {
		_ = activate(plain.authClientFrom(fmt.Sprintf("203.0.113.%d", i)))
	}
	wantCode(t, activate(plain.authClientFrom("203.0.113.200")), connect.CodeResourceExhausted)
}

// TestRefreshSurvivesAPhone: concurrent refreshes and retries of one
// token within the grace all get the one successor; a reuse after the
// grace revokes the sign-in, and the app can tell that from a wrong token.
func TestRefreshSurvivesAPhone(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		const n = 20
		var wg sync.WaitGroup
		got := make([]*connect.Response[mtmv1.RefreshResponse], n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: pt.refresh}))
			})
		}
		wg.Wait()
		successors := map[string]bool{}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("refresh %d of %d concurrent: %v", i+1, n, err)
			}
			successors[got[i].Msg.GetTokens().GetRefreshToken()] = true
			if _, err := e.patientClient(got[i].Msg.GetTokens().GetAccessToken()).GetProfile(ctx, connect.NewRequest(&mtmv1.GetProfileRequest{PatientId: pt.id})); err != nil {
				t.Fatalf("access token of refresh %d refused: %v", i+1, err)
			}
		}
		if len(successors) != 1 {
			t.Fatalf("%d concurrent refreshes of one token gave %d different refresh tokens, want 1", n, len(successors))
		}
		next := got[0].Msg.GetTokens().GetRefreshToken()

		// A retry after a lost answer, 20 s later: the same successor.
		e.clock.Advance(20 * time.Second)
		retry, err := e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: pt.refresh}))
		if err != nil {
			t.Fatalf("retry within the grace: %v", err)
		}
		if retry.Msg.GetTokens().GetRefreshToken() != next {
			t.Fatal("retry within the grace got another refresh token")
		}

		// After the grace, presenting the spent token is a reuse.
		e.clock.Advance(api.DefaultRefreshGrace)
		_, err = e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: pt.refresh}))
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSessionRevoked)
		_, err = e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: next}))
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSessionRevoked)
		_, err = e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: "not-a-token"}))
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonInvalidCredentials)
	})
}

// TestSignUpDoesNotRevealEmails: sign-up needs a live invite code, and
// every failure is the same answer whether or not the e-mail has an
// account; an existing caregiver redeems an invite with their password.
func TestSignUpDoesNotRevealEmails(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		ann, bo := e.enroll(rph, "Ann"), e.enroll(rph, "Bo")
		cg := e.caregiver(ann, "cg@x.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
		signUp := func(email, password, code string) (*connect.Response[mtmv1.SignUpCaregiverResponse], error) {
			return e.authClient().SignUpCaregiver(ctx, connect.NewRequest(&mtmv1.SignUpCaregiverRequest{
				Email: email, Password: password, DisplayName: "Someone", InviteCode: code}))
		}
		answer := func(err error) string {
			ce := wantCode(t, err, connect.CodeUnauthenticated)
			wantReason(t, ce, api.ReasonInvalidCredentials)
			return ce.Message()
		}
		known := answer(e.signUpErr(signUp("cg@x.test", "caregiver password 1", "ZZZZ-ZZZZ-ZZZZ")))
		unknown := answer(e.signUpErr(signUp("new@x.test", "caregiver password 1", "ZZZZ-ZZZZ-ZZZZ")))
		if known != unknown {
			t.Fatalf("known and unknown e-mails answer differently: %q vs %q", known, unknown)
		}

		inv, err := e.patientClient(bo.token).InviteCaregiver(ctx, connect.NewRequest(&mtmv1.InviteCaregiverRequest{PatientId: bo.id,
			Scopes: []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES}}))
		if err != nil {
			t.Fatal(err)
		}
		code := inv.Msg.GetInviteCode()
		if wrong := answer(e.signUpErr(signUp("cg@x.test", "not the password", code))); wrong != known {
			t.Fatalf("a wrong password for a known e-mail answers %q, a bad invite %q", wrong, known)
		}
		// The failed attempt did not spend the invite: the caregiver redeems it.
		res, err := signUp("cg@x.test", "caregiver password 1", code)
		if err != nil {
			t.Fatalf("existing caregiver redeeming an invite: %v", err)
		}
		if res.Msg.GetAccountId() != cg.id || res.Msg.GetPatientId() != bo.id {
			t.Fatalf("redeemed as %s for %s, want %s for %s", res.Msg.GetAccountId(), res.Msg.GetPatientId(), cg.id, bo.id)
		}
		tok := res.Msg.GetTokens().GetAccessToken()
		for _, p := range []enrolled{ann, bo} {
			if _, err := e.patientClient(tok).GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: p.id})); err != nil {
				t.Fatalf("caregiver reading %s's medicines: %v", p.id, err)
			}
		}
		_, err = signUp("late@x.test", "caregiver password 1", code)
		answer(err) // single use
	})
}

// signUpErr passes on a sign-up's error, failing the test if it succeeded.
func (e *env) signUpErr(_ *connect.Response[mtmv1.SignUpCaregiverResponse], err error) error {
	e.t.Helper()
	if err == nil {
		e.t.Fatal("sign-up succeeded, want it refused")
	}
	return err
}

// TestForensics: failed sign-ins, activations and invite redemptions reach
// the audit archive with a reason and the client address, and every
// request's log line names the client address and the actor.
func TestForensics(t *testing.T) {
	st := newEnv(t).store
	e := newEnvBehind(t, st, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")})
	ctx := context.Background()
	rph := e.pharmacy("ph_a", "rph@a.test")
	pt := e.enroll(rph, "Ann")
	c := e.authClientFrom("203.0.113.9")
	_, _ = loginWith(c, "rph@a.test", "wrong", "")
	_, _ = loginWith(c, "nobody@a.test", "wrong", "")
	_, _ = c.ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: "ZZZZ-ZZZZ-ZZZZ", DateOfBirth: "1950-06-01", DeviceName: "p"}))
	enr, err := e.careClient(rph).EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: "Bo", FamilyName: "T", DateOfBirth: "1950-06-01", TimeZone: "America/Chicago"}))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: enr.Msg.GetActivationCode(), DateOfBirth: "1950-06-02", DeviceName: "p"}))
	cg := e.caregiver(pt, "cg@x.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES})
	_, err = e.patientClient(cg.token).AcceptCaregiverInvite(ctx, connect.NewRequest(&mtmv1.AcceptCaregiverInviteRequest{InviteCode: "ZZZZ-ZZZZ-ZZZZ"}))
	wantCode(t, err, connect.CodeNotFound)

	want := []struct{ procedure, reason, actor, patient, client string }{
		{mtmv1connect.AuthServiceLoginProcedure, "wrong_password", "ac_ph_a", "", "203.0.113.9"},
		{mtmv1connect.AuthServiceLoginProcedure, "unknown_account", "", "", "203.0.113.9"},
		{mtmv1connect.AuthServiceActivatePatientProcedure, "unknown_code", "", "", "203.0.113.9"},
		{mtmv1connect.AuthServiceActivatePatientProcedure, "wrong_date_of_birth", "", enr.Msg.GetPatient().GetId(), "203.0.113.9"},
		{mtmv1connect.PatientServiceAcceptCaregiverInviteProcedure, "unknown_invite", cg.id, "", "127.0.0.1"},
	}
	var got []store.AuditEvent
	for _, ev := range e.archive.all() {
		if ev.Reason != "" {
			got = append(got, ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("archive holds %d failed sign-ins, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Procedure != w.procedure || g.Reason != w.reason || g.ActorID != w.actor || g.PatientID != w.patient || g.ClientAddr != w.client || g.Allowed {
			t.Errorf("archive event %d = %+v, want %+v", i, g, w)
		}
	}
	// The failed activation names the patient only in the archive, not in
	// the patient's own report.
	evs, err := e.store.ListAuditEvents(ctx, enr.Msg.GetPatient().GetId(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Procedure == mtmv1connect.AuthServiceActivatePatientProcedure {
			t.Errorf("the patient's report holds the failed activation: %+v", ev)
		}
	}

	// Every RPC line carries client_addr and, once known, the actor.
	lines, actors := 0, map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l["msg"] != "rpc" {
			continue
		}
		lines++
		addr, _ := l["client_addr"].(string)
		if _, err := netip.ParseAddr(addr); err != nil {
			t.Errorf("log line without a client address: %s", sc.Text())
		}
		if a, _ := l["actor"].(string); a != "" {
			actors[a] = true
		}
		if strings.Contains(sc.Text(), "Ann") || strings.Contains(sc.Text(), "1950-06") {
			t.Errorf("log line carries patient data: %s", sc.Text())
		}
	}
	if lines == 0 || !actors["ac_ph_a"] || !actors[pt.id] || !actors[cg.id] {
		t.Fatalf("%d rpc log lines, actors %v; want lines naming the pharmacist, the patient and the caregiver", lines, actors)
	}
}

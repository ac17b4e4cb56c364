package api_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/auth"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

func login2(e *env, email, password, code, newSecret string) (*connect.Response[mtmv1.LoginResponse], error) {
	return e.authClient().Login(context.Background(), connect.NewRequest(&mtmv1.LoginRequest{
		Email: email, Password: password, TotpCode: code, NewTotpSecret: newSecret}))
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := auth.TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSecondFactorRequiredByPharmacy: once the admin requires it, the
// API's own Login (not only the console) refuses the pharmacy's staff
// without a code; enrolment goes through Login; a used code is refused;
// a wrong code counts against the throttle.
func TestSecondFactorRequiredByPharmacy(t *testing.T) {
	e := newEnv(t)
	const pw = "correct horse battery"
	admin := e.pharmacy("ph_a", "admin@a.test")
	e.pharmacy("ph_b", "admin@b.test")

	// A pharmacist (not admin) cannot change the requirement; the admin can.
	_, err := e.careClient(admin).UpdatePharmacy(context.Background(), connect.NewRequest(&mtmv1.UpdatePharmacyRequest{
		Name: "ph_a", RequireSecondFactor: new(true)}))
	if err != nil {
		t.Fatalf("admin requires the second factor: %v", err)
	}
	got, err := e.careClient(admin).GetPharmacy(context.Background(), connect.NewRequest(&mtmv1.GetPharmacyRequest{}))
	if err != nil || !got.Msg.GetPharmacy().GetRequireSecondFactor() {
		t.Fatalf("GetPharmacy after requiring: %v %v", got, err)
	}
	// Updating other details without the field leaves it required.
	if _, err := e.careClient(admin).UpdatePharmacy(context.Background(), connect.NewRequest(&mtmv1.UpdatePharmacyRequest{Name: "ph_a renamed"})); err != nil {
		t.Fatal(err)
	}

	// Password alone: refused with the enrolment reason (no secret yet).
	_, err = login2(e, "admin@a.test", pw, "", "")
	wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSecondFactorEnrollmentRequired)
	// A wrong password still says only that.
	_, err = login2(e, "admin@a.test", "wrong", "", "")
	wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonInvalidCredentials)
	// The other pharmacy is unaffected.
	if _, err := login2(e, "admin@b.test", pw, "", ""); err != nil {
		t.Fatalf("pharmacy without the requirement: %v", err)
	}

	// Enrol with the sign-in: a wrong code for the new secret enrols nothing.
	secret, err := auth.NewTOTPSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	_, err = login2(e, "admin@a.test", pw, "000000", secret)
	if code(t, secret, now) != "000000" {
		wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSecondFactorInvalid)
	}
	res, err := login2(e, "admin@a.test", pw, code(t, secret, now), secret)
	if err != nil || !res.Msg.GetSecondFactor() {
		t.Fatalf("enrolling sign-in: %v %v", res, err)
	}
	// Now the secret is required; a second enrolment is refused.
	_, err = login2(e, "admin@a.test", pw, "", "")
	wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSecondFactorRequired)
	other, _ := auth.NewTOTPSecret()
	_, err = login2(e, "admin@a.test", pw, code(t, other, now), other)
	wantCode(t, err, connect.CodeInvalidArgument)
	// The code just used is refused (replay within its window) ...
	_, err = login2(e, "admin@a.test", pw, code(t, secret, now), "")
	wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSecondFactorInvalid)
	// ... the next step's code works, once.
	e.clock.Advance(auth.TOTPPeriod)
	next := code(t, secret, e.clock.Now())
	if _, err := login2(e, "admin@a.test", pw, next, ""); err != nil {
		t.Fatalf("next code: %v", err)
	}
	_, err = login2(e, "admin@a.test", pw, next, "")
	wantReason(t, wantCode(t, err, connect.CodeUnauthenticated), api.ReasonSecondFactorInvalid)

	// Guessing codes is throttled like guessing passwords.
	var throttled bool
	for i := 0; i < 15 && !throttled; i++ {
		_, err = login2(e, "admin@a.test", pw, "999999", "")
		throttled = connect.CodeOf(err) == connect.CodeResourceExhausted
	}
	if !throttled {
		t.Fatal("15 wrong codes in a row were never throttled")
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
}

package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Reasons for failed sign-ins in the audit archive: fixed words, never
// what the caller typed.
const (
	reasonThrottled       = "throttled"
	reasonUnknownAccount  = "unknown_account"
	reasonWrongPassword   = "wrong_password"
	reasonUnknownCode     = "unknown_code"
	reasonWrongBirthDate  = "wrong_date_of_birth"
	reasonCodeSpent       = "code_spent"
	reasonUnknownInvite   = "unknown_invite"
	reasonNotCaregiver    = "not_a_caregiver"
	reasonEmailRaced      = "email_taken_concurrently"
	reasonInvalidArgument = "invalid_argument"
	reasonNoSecondFactor  = "second_factor_missing"
	reasonBadSecondFactor = "second_factor_invalid"
)

// failed records a failed sign-in in the audit archive and returns err.
func failed(ctx context.Context, err error, reason, actorID, patientID string) error {
	if connect.CodeOf(err) == connect.CodeResourceExhausted {
		reason = reasonThrottled
	}
	audit.Failed(ctx, reason, actorID, patientID)
	return err
}

// ActivatePatient implements mtm.v1.AuthService.ActivatePatient. Failures
// count against the client address's budget and the code's own.
func (s *AuthService) ActivatePatient(ctx context.Context, req *connect.Request[mtmv1.ActivatePatientRequest]) (*connect.Response[mtmv1.ActivatePatientResponse], error) {
	c := s.cfg
	dob, err := store.ParseDate(req.Msg.GetDateOfBirth())
	if err != nil {
		return nil, failed(ctx, invalidField("date_of_birth", "not a calendar date (YYYY-MM-DD)"), reasonInvalidArgument, "", "")
	}
	hash := auth.HashSecret(auth.NormalizeActivationCode(req.Msg.GetActivationCode()))
	try, err := c.begin(ctx,
		charge{activateAddress, clientAddress(ctx, req.Peer())},
		charge{activateCode, hash},
		charge{activateCodeDay, hash})
	if err != nil {
		return nil, failed(ctx, err, reasonThrottled, "", "")
	}
	now := c.Now()
	code, err := c.Store.GetActivationCode(ctx, hash, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, failed(ctx, errBadCredentials, reasonUnknownCode, "", "")
	}
	if err != nil {
		return nil, err
	}
	pt, err := c.Store.GetPatient(ctx, code.PatientID)
	if err != nil {
		return nil, err
	}
	if pt.DateOfBirth != dob {
		return nil, failed(ctx, errBadCredentials, reasonWrongBirthDate, "", pt.ID)
	}
	if _, err := c.Store.ConsumeActivationCode(ctx, hash, now); errors.Is(err, store.ErrNotFound) {
		return nil, failed(ctx, errBadCredentials, reasonCodeSpent, "", pt.ID) // spent by a concurrent activation
	} else if err != nil {
		return nil, err
	}
	try.succeeded(ctx)
	if pt.ActivatedAt.IsZero() {
		if _, err := c.Store.UpdatePatient(ctx, pt.ID, func(p store.Patient) (store.Patient, error) {
			if p.ActivatedAt.IsZero() {
				p.ActivatedAt = now
			}
			return p, nil
		}); err != nil {
			return nil, err
		}
	}
	p := auth.Principal{Subject: pt.ID, Role: store.RolePatient}
	audit.SignedIn(ctx, p)
	tokens, err := c.startSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ActivatePatientResponse{PatientId: pt.ID, Tokens: tokens}), nil
}

// loginCharges are the budgets a sign-in to email spends: the device's
// when the client presents a valid device token of the account, else the
// client address's and the account's.
func (c Config) loginCharges(ctx context.Context, peer connect.Peer, email, deviceToken string, acct store.Account, known bool) []charge {
	if known && deviceToken != "" {
		if device, err := c.Tokens.VerifyDevice(deviceToken, acct.ID); err == nil {
			key := acct.ID + ":" + device
			return []charge{{loginDevice, key}, {loginDeviceDay, key}}
		}
	}
	return []charge{{loginAddress, clientAddress(ctx, peer)}, {loginAccount, email}, {loginAccountDay, email}}
}

// Login implements mtm.v1.AuthService.Login.
func (s *AuthService) Login(ctx context.Context, req *connect.Request[mtmv1.LoginRequest]) (*connect.Response[mtmv1.LoginResponse], error) {
	c := s.cfg
	email := store.NormalizeEmail(req.Msg.GetEmail())
	acct, err := c.Store.GetAccountByEmail(ctx, email)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	try, err := c.begin(ctx, c.loginCharges(ctx, req.Peer(), email, req.Msg.GetDeviceToken(), acct, known)...)
	if err != nil {
		return nil, failed(ctx, err, reasonThrottled, acct.ID, "")
	}
	if !known {
		auth.DummyPasswordCheck(req.Msg.GetPassword())
		return nil, failed(ctx, errBadCredentials, reasonUnknownAccount, "", "")
	}
	ok, err := auth.CheckPassword(acct.PasswordHash, req.Msg.GetPassword())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, failed(ctx, errBadCredentials, reasonWrongPassword, acct.ID, "")
	}
	secondFactor, err := c.checkSecondFactor(ctx, try, acct, req.Msg)
	if err != nil {
		return nil, err
	}
	try.succeeded(ctx)
	p := auth.Principal{Subject: acct.ID, Role: acct.Role, PharmacyID: acct.PharmacyID}
	audit.SignedIn(ctx, p)
	tokens, err := c.startSession(ctx, p)
	if err != nil {
		return nil, err
	}
	device, _, err := c.Tokens.IssueDevice(acct.ID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.LoginResponse{
		AccountId:    acct.ID,
		Role:         roleToProto[acct.Role],
		PharmacyId:   acct.PharmacyID,
		Tokens:       tokens,
		DeviceToken:  device,
		SecondFactor: secondFactor,
	}), nil
}

// Refresh implements mtm.v1.AuthService.Refresh. A repeat of the token
// just spent, within Config.RefreshGrace, gets the same new refresh token
// (and a fresh access token for the same session); any other reuse revokes
// the session. Refusals carry an ErrorInfo reason: SESSION_REVOKED or
// INVALID_CREDENTIALS.
func (s *AuthService) Refresh(ctx context.Context, req *connect.Request[mtmv1.RefreshRequest]) (*connect.Response[mtmv1.RefreshResponse], error) {
	c := s.cfg
	addr := clientAddress(ctx, req.Peer())
	now := c.Now()
	if err := s.refresh.check(addr, now); err != nil {
		return nil, err
	}
	presented := req.Msg.GetRefreshToken()
	token, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	sealed, err := auth.SealSuccessor(presented, token)
	if err != nil {
		return nil, err
	}
	rot := store.Rotation{
		Next:   store.RefreshToken{Hash: auth.HashSecret(token), ExpiresAt: now.Add(c.RefreshTokenTTL), CreatedAt: now},
		Sealed: sealed,
		Grace:  c.RefreshGrace,
	}
	got, err := c.Store.RotateRefreshToken(ctx, auth.HashSecret(presented), rot, now)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		c.Logger.WarnContext(ctx, "refresh token reused; session revoked")
		return nil, s.refresh.failed(ctx, c, addr, now, errSessionRevoked)
	case errors.Is(err, store.ErrSessionRevoked):
		return nil, s.refresh.failed(ctx, c, addr, now, errSessionRevoked)
	case errors.Is(err, store.ErrNotFound):
		return nil, s.refresh.failed(ctx, c, addr, now, errBadCredentials)
	case err != nil:
		return nil, err
	}
	if got.Repeat {
		if token, err = auth.OpenSuccessor(presented, got.Sealed); err != nil {
			return nil, err
		}
	}
	p := auth.Principal{Subject: got.Spent.Subject, Role: got.Spent.Role, SessionID: got.Spent.FamilyID}
	if p.Role.IsStaff() || p.Role == store.RoleCaregiver {
		// Staff may have moved pharmacy or lost the account since sign-in.
		acct, err := c.Store.GetAccount(ctx, got.Spent.Subject)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errBadCredentials
		}
		if err != nil {
			return nil, err
		}
		p.Role, p.PharmacyID = acct.Role, acct.PharmacyID
	}
	access, exp, err := c.Tokens.IssueAccess(p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RefreshResponse{Tokens: &mtmv1.TokenPair{
		AccessToken:           access,
		AccessTokenExpiresAt:  ts(exp),
		RefreshToken:          token,
		RefreshTokenExpiresAt: ts(got.Next.ExpiresAt),
	}}), nil
}

// Logout implements mtm.v1.AuthService.Logout. It answers the same whether
// or not the token was known, so it cannot be used to test tokens.
func (s *AuthService) Logout(ctx context.Context, req *connect.Request[mtmv1.LogoutRequest]) (*connect.Response[mtmv1.LogoutResponse], error) {
	err := s.cfg.Store.RevokeRefreshFamily(ctx, auth.HashSecret(req.Msg.GetRefreshToken()))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.LogoutResponse{}), nil
}

// SignUpCaregiver implements mtm.v1.AuthService.SignUpCaregiver: it redeems
// an invite code for a new caregiver account, or for the existing account
// of the e-mail when the password is that account's. Every failure is the
// same errBadCredentials, so whether an e-mail has an account shows only
// to a holder of a live invite code, within the code's failure budget.
// A password tried against an existing account spends that account's
// login budgets, so sign-up is no way around them.
func (s *AuthService) SignUpCaregiver(ctx context.Context, req *connect.Request[mtmv1.SignUpCaregiverRequest]) (*connect.Response[mtmv1.SignUpCaregiverResponse], error) {
	c, m := s.cfg, req.Msg
	email := store.NormalizeEmail(m.GetEmail())
	inviteHash := auth.HashSecret(auth.NormalizeActivationCode(m.GetInviteCode()))
	addr := clientAddress(ctx, req.Peer())
	acct, err := c.Store.GetAccountByEmail(ctx, email)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	try, err := c.begin(ctx, charge{signUpAddress, addr}, charge{signUpCode, inviteHash}, charge{signUpCodeDay, inviteHash},
		charge{loginAccount, email}, charge{loginAccountDay, email})
	if err != nil {
		return nil, failed(ctx, err, reasonThrottled, acct.ID, "")
	}
	if known {
		ok, err := auth.CheckPassword(acct.PasswordHash, m.GetPassword())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, failed(ctx, errBadCredentials, reasonWrongPassword, acct.ID, "")
		}
		if acct.Role != store.RoleCaregiver {
			return nil, failed(ctx, errBadCredentials, reasonNotCaregiver, acct.ID, "")
		}
	} else {
		hash, err := auth.HashPassword(m.GetPassword())
		if err != nil {
			return nil, err
		}
		id, err := auth.NewID("cg")
		if err != nil {
			return nil, err
		}
		acct = store.Account{ID: id, Email: email, DisplayName: m.GetDisplayName(), PasswordHash: hash, Role: store.RoleCaregiver, CreatedAt: c.Now()}
	}
	inv, err := c.Store.ConsumeInvite(ctx, inviteHash, c.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, failed(ctx, errBadCredentials, reasonUnknownInvite, acct.ID, "")
	}
	if err != nil {
		return nil, err
	}
	if !known {
		if err := c.Store.CreateAccount(ctx, acct); errors.Is(err, store.ErrAlreadyExists) {
			// Taken between the look-up and now: the invite is spent.
			return nil, failed(ctx, errBadCredentials, reasonEmailRaced, "", inv.PatientID)
		} else if err != nil {
			return nil, err
		}
	}
	try.succeeded(ctx)
	p := auth.Principal{Subject: acct.ID, Role: acct.Role}
	audit.SignedIn(ctx, p)
	grantID, err := c.redeemInvite(ctx, acct, inv)
	if err != nil {
		return nil, err
	}
	tokens, err := c.startSession(ctx, p)
	if err != nil {
		return nil, err
	}
	device, _, err := c.Tokens.IssueDevice(acct.ID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SignUpCaregiverResponse{AccountId: acct.ID, Tokens: tokens,
		PatientId: inv.PatientID, GrantId: grantID, DeviceToken: device}), nil
}

// startSession starts a new refresh-token family for p and returns its
// first token pair.
func (c Config) startSession(ctx context.Context, p auth.Principal) (*mtmv1.TokenPair, error) {
	now := c.Now()
	family, err := auth.NewID("sf")
	if err != nil {
		return nil, err
	}
	token, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	rt := store.RefreshToken{
		Hash:      auth.HashSecret(token),
		FamilyID:  family,
		Subject:   p.Subject,
		Role:      p.Role,
		ExpiresAt: now.Add(c.RefreshTokenTTL),
		CreatedAt: now,
	}
	if err := c.Store.CreateRefreshToken(ctx, rt); err != nil {
		return nil, err
	}
	p.SessionID = family
	access, exp, err := c.Tokens.IssueAccess(p)
	if err != nil {
		return nil, err
	}
	return &mtmv1.TokenPair{
		AccessToken:           access,
		AccessTokenExpiresAt:  ts(exp),
		RefreshToken:          token,
		RefreshTokenExpiresAt: ts(rt.ExpiresAt),
	}, nil
}

// checkSecondFactor is the second step of a Login whose password was
// right: accounts with a TOTP secret, and staff of a pharmacy that
// requires one, must send a code that was not used before. A request
// with new_totp_secret enrols it (the code proves the app holds it). It
// reports whether the account signs in with a second factor.
func (c Config) checkSecondFactor(ctx context.Context, try *attempt, acct store.Account, m *mtmv1.LoginRequest) (bool, error) {
	required := false
	if acct.TOTPSecret == "" && acct.PharmacyID != "" && (acct.Role == store.RolePharmacist || acct.Role == store.RolePharmacyAdmin) {
		ph, err := c.Store.GetPharmacy(ctx, acct.PharmacyID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, err
		}
		required = ph.RequireSecondFactor
	}
	newSecret := m.GetNewTotpSecret()
	if newSecret != "" {
		if acct.TOTPSecret != "" {
			return false, failed(ctx, invalidField("new_totp_secret", "the account already has a second factor"), reasonInvalidArgument, acct.ID, "")
		}
		if !auth.ValidTOTPSecret(newSecret) {
			return false, failed(ctx, invalidField("new_totp_secret", "not a TOTP secret of 128 to 512 bits"), reasonInvalidArgument, acct.ID, "")
		}
	}
	secret := acct.TOTPSecret
	if secret == "" {
		secret = newSecret
	}
	if secret == "" && !required {
		return false, nil
	}
	if m.GetTotpCode() == "" {
		// The password was right: not a failed guess, but no sign-in yet.
		try.forget(ctx, false)
		if secret == "" {
			return false, failed(ctx, errSecondFactorEnroll, reasonNoSecondFactor, acct.ID, "")
		}
		return false, failed(ctx, errSecondFactorRequired, reasonNoSecondFactor, acct.ID, "")
	}
	step, ok := auth.VerifyTOTP(secret, m.GetTotpCode(), c.Now(), acct.TOTPLastStep)
	if !ok {
		return false, failed(ctx, errSecondFactorInvalid, reasonBadSecondFactor, acct.ID, "")
	}
	// Record the step atomically: of two sign-ins with the same code, one
	// wins.
	_, err := c.Store.UpdateAccount(ctx, acct.ID, func(a store.Account) (store.Account, error) {
		if step <= a.TOTPLastStep {
			return a, errSecondFactorInvalid
		}
		switch {
		case a.TOTPSecret == "" && newSecret != "":
			a.TOTPSecret = newSecret
		case a.TOTPSecret != secret:
			return a, errSecondFactorInvalid // changed meanwhile
		}
		a.TOTPLastStep = step
		return a, nil
	})
	if errors.Is(err, errSecondFactorInvalid) {
		return false, failed(ctx, errSecondFactorInvalid, reasonBadSecondFactor, acct.ID, "")
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

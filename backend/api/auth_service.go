package api

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Throttles on the sign-in paths, counted in the store so that they hold
// across server instances. Every attempt counts, so a client address or an
// account can be tried only this often.
var (
	throttleLoginAccount    = throttle{"login:account:", 10, 15 * time.Minute}
	throttleLoginAddress    = throttle{"login:addr:", 50, 15 * time.Minute}
	throttleActivateAddress = throttle{"activate:addr:", 20, 15 * time.Minute}
	throttleActivateCode    = throttle{"activate:code:", 5, time.Hour}
	throttleSignUpAddress   = throttle{"signup:addr:", 10, time.Hour}
	throttleRefreshAddress  = throttle{"refresh:addr:", 300, time.Minute}
)

type throttle struct {
	prefix string
	limit  int
	window time.Duration
}

// check counts one attempt for key and returns resource_exhausted, with a
// Retry-After header, when the limit is spent.
func (c Config) check(ctx context.Context, t throttle, key string) error {
	ok, retryAfter, err := c.Store.Allow(ctx, t.prefix+key, t.limit, t.window, c.Now())
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	e := connect.NewError(connect.CodeResourceExhausted, errors.New("too many attempts, try again later"))
	e.Meta().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)+1))
	return e
}

// clientAddress is the caller's IP address, without the port.
func clientAddress(peer connect.Peer) string {
	host, _, err := net.SplitHostPort(peer.Addr)
	if err != nil {
		return peer.Addr
	}
	return host
}

// ActivatePatient implements mtm.v1.AuthService.ActivatePatient.
func (s *AuthService) ActivatePatient(ctx context.Context, req *connect.Request[mtmv1.ActivatePatientRequest]) (*connect.Response[mtmv1.ActivatePatientResponse], error) {
	c := s.cfg
	if err := c.check(ctx, throttleActivateAddress, clientAddress(req.Peer())); err != nil {
		return nil, err
	}
	dob, err := store.ParseDate(req.Msg.GetDateOfBirth())
	if err != nil {
		return nil, invalidField("date_of_birth", "not a calendar date (YYYY-MM-DD)")
	}
	hash := auth.HashSecret(auth.NormalizeActivationCode(req.Msg.GetActivationCode()))
	now := c.Now()
	code, err := c.Store.GetActivationCode(ctx, hash, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, err
	}
	if err := c.check(ctx, throttleActivateCode, hash); err != nil {
		return nil, err
	}
	pt, err := c.Store.GetPatient(ctx, code.PatientID)
	if err != nil {
		return nil, err
	}
	if pt.DateOfBirth != dob {
		return nil, errBadCredentials
	}
	if _, err := c.Store.ConsumeActivationCode(ctx, hash, now); errors.Is(err, store.ErrNotFound) {
		return nil, errBadCredentials // spent by a concurrent activation
	} else if err != nil {
		return nil, err
	}
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
	tokens, err := c.startSession(ctx, auth.Principal{Subject: pt.ID, Role: store.RolePatient})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ActivatePatientResponse{PatientId: pt.ID, Tokens: tokens}), nil
}

// Login implements mtm.v1.AuthService.Login.
func (s *AuthService) Login(ctx context.Context, req *connect.Request[mtmv1.LoginRequest]) (*connect.Response[mtmv1.LoginResponse], error) {
	c := s.cfg
	email := store.NormalizeEmail(req.Msg.GetEmail())
	if err := c.check(ctx, throttleLoginAddress, clientAddress(req.Peer())); err != nil {
		return nil, err
	}
	if err := c.check(ctx, throttleLoginAccount, email); err != nil {
		return nil, err
	}
	acct, err := c.Store.GetAccountByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		auth.DummyPasswordCheck(req.Msg.GetPassword())
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, err
	}
	ok, err := auth.CheckPassword(acct.PasswordHash, req.Msg.GetPassword())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errBadCredentials
	}
	tokens, err := c.startSession(ctx, auth.Principal{Subject: acct.ID, Role: acct.Role, PharmacyID: acct.PharmacyID})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.LoginResponse{
		AccountId:  acct.ID,
		Role:       roleToProto[acct.Role],
		PharmacyId: acct.PharmacyID,
		Tokens:     tokens,
	}), nil
}

// Refresh implements mtm.v1.AuthService.Refresh.
func (s *AuthService) Refresh(ctx context.Context, req *connect.Request[mtmv1.RefreshRequest]) (*connect.Response[mtmv1.RefreshResponse], error) {
	c := s.cfg
	if err := c.check(ctx, throttleRefreshAddress, clientAddress(req.Peer())); err != nil {
		return nil, err
	}
	now := c.Now()
	token, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	next := store.RefreshToken{Hash: auth.HashSecret(token), ExpiresAt: now.Add(c.RefreshTokenTTL), CreatedAt: now}
	spent, err := c.Store.RotateRefreshToken(ctx, auth.HashSecret(req.Msg.GetRefreshToken()), next, now)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		c.Logger.WarnContext(ctx, "refresh token reused; session revoked")
		return nil, errBadCredentials
	case errors.Is(err, store.ErrNotFound):
		return nil, errBadCredentials
	case err != nil:
		return nil, err
	}
	p := auth.Principal{Subject: spent.Subject, Role: spent.Role, SessionID: spent.FamilyID}
	if p.Role.IsStaff() || p.Role == store.RoleCaregiver {
		// Staff may have moved pharmacy or lost the account since sign-in.
		acct, err := c.Store.GetAccount(ctx, spent.Subject)
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
		RefreshTokenExpiresAt: ts(next.ExpiresAt),
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

// SignUpCaregiver implements mtm.v1.AuthService.SignUpCaregiver.
func (s *AuthService) SignUpCaregiver(ctx context.Context, req *connect.Request[mtmv1.SignUpCaregiverRequest]) (*connect.Response[mtmv1.SignUpCaregiverResponse], error) {
	c := s.cfg
	if err := c.check(ctx, throttleSignUpAddress, clientAddress(req.Peer())); err != nil {
		return nil, err
	}
	hash, err := auth.HashPassword(req.Msg.GetPassword())
	if err != nil {
		return nil, err
	}
	id, err := auth.NewID("cg")
	if err != nil {
		return nil, err
	}
	acct := store.Account{
		ID:           id,
		Email:        store.NormalizeEmail(req.Msg.GetEmail()),
		DisplayName:  req.Msg.GetDisplayName(),
		PasswordHash: hash,
		Role:         store.RoleCaregiver,
		CreatedAt:    c.Now(),
	}
	if err := c.Store.CreateAccount(ctx, acct); errors.Is(err, store.ErrAlreadyExists) {
		return nil, connect.NewError(connect.CodeAlreadyExists, errors.New("an account with this e-mail exists"))
	} else if err != nil {
		return nil, err
	}
	tokens, err := c.startSession(ctx, auth.Principal{Subject: acct.ID, Role: acct.Role})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SignUpCaregiverResponse{AccountId: acct.ID, Tokens: tokens}), nil
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

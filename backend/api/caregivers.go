package api

import (
	"context"
	"errors"
	"slices"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// inviteTTL is how long a caregiver invite code works.
const inviteTTL = 7 * 24 * time.Hour

var scopeFromProto = map[mtmv1.CaregiverScope]store.Scope{
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES:     store.ScopeViewMedicines,
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_PLAN:          store.ScopeViewPlan,
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_MESSAGE:            store.ScopeMessage,
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_MISSED_DOSE_ALERTS: store.ScopeMissedDoseAlerts,
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_MANAGE_REMINDERS:   store.ScopeManageReminders,
}

func scopeToProto(s store.Scope) mtmv1.CaregiverScope {
	for k, v := range scopeFromProto {
		if v == s {
			return k
		}
	}
	return mtmv1.CaregiverScope_CAREGIVER_SCOPE_UNSPECIFIED
}

func grantToProto(g store.Grant) *mtmv1.CaregiverGrant {
	out := &mtmv1.CaregiverGrant{Id: g.ID, CaregiverId: g.CaregiverID, CaregiverName: g.CaregiverName, EndsOn: g.EndsOn.String(),
		CreatedAt: ts(g.CreatedAt), RevokedAt: ts(g.RevokedAt)}
	for _, s := range g.Scopes {
		out.Scopes = append(out.Scopes, scopeToProto(s))
	}
	return out
}

// InviteCaregiver implements mtm.v1.PatientService.InviteCaregiver. Only the
// patient may invite.
func (s *PatientService) InviteCaregiver(ctx context.Context, req *connect.Request[mtmv1.InviteCaregiverRequest]) (*connect.Response[mtmv1.InviteCaregiverResponse], error) {
	c, m := s.cfg, req.Msg
	_, pt, err := c.loadForPatientSide(ctx, m.GetPatientId(), scopeSelf)
	if err != nil {
		return nil, err
	}
	var endsOn store.Date
	if m.GetEndsOn() != "" {
		if endsOn, err = store.ParseDate(m.GetEndsOn()); err != nil {
			return nil, invalidField("ends_on", "not a calendar date (YYYY-MM-DD)")
		}
		if endsOn.Before(today(pt, c.Now())) {
			return nil, invalidField("ends_on", "must not be in the past")
		}
	}
	inv := store.Invite{PatientID: pt.ID, EndsOn: endsOn, CreatedAt: c.Now(), ExpiresAt: c.Now().Add(inviteTTL)}
	for _, sc := range m.GetScopes() {
		inv.Scopes = append(inv.Scopes, scopeFromProto[sc])
	}
	for attempt := 0; ; attempt++ {
		code, err := auth.NewActivationCode()
		if err != nil {
			return nil, err
		}
		inv.CodeHash = auth.HashSecret(auth.NormalizeActivationCode(code))
		err = c.Store.PutInvite(ctx, inv)
		if errors.Is(err, store.ErrAlreadyExists) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&mtmv1.InviteCaregiverResponse{InviteCode: code, ExpiresAt: ts(inv.ExpiresAt)}), nil
	}
}

// AcceptCaregiverInvite implements mtm.v1.PatientService.AcceptCaregiverInvite
// for a signed-in caregiver: how an existing account redeems an invite.
// Failed redemptions count against the client address's and the account's
// budgets and go to the audit archive.
func (s *PatientService) AcceptCaregiverInvite(ctx context.Context, req *connect.Request[mtmv1.AcceptCaregiverInviteRequest]) (*connect.Response[mtmv1.AcceptCaregiverInviteResponse], error) {
	c := s.cfg
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != store.RoleCaregiver {
		return nil, errCaregiverOnly
	}
	try, err := c.begin(ctx, charge{inviteAddress, clientAddress(ctx, req.Peer())}, charge{inviteAccount, p.Subject})
	if err != nil {
		return nil, failed(ctx, err, reasonThrottled, "", "")
	}
	acct, err := c.Store.GetAccount(ctx, p.Subject)
	if err != nil {
		return nil, err
	}
	inv, err := c.Store.ConsumeInvite(ctx, auth.HashSecret(auth.NormalizeActivationCode(req.Msg.GetInviteCode())), c.Now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, failed(ctx, connect.NewError(connect.CodeNotFound, errors.New("invite code not valid or expired")), reasonUnknownInvite, "", "")
	}
	if err != nil {
		return nil, err
	}
	try.succeeded(ctx)
	grantID, err := c.redeemInvite(ctx, acct, inv)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.AcceptCaregiverInviteResponse{PatientId: inv.PatientID, GrantId: grantID}), nil
}

// redeemInvite gives the caregiver acct the grant of a consumed invite. The
// grant is written to the patient's record first (the source of truth),
// then to the caregiver's patient index; it replaces the caregiver's
// standing grant from that patient, if any.
func (c Config) redeemInvite(ctx context.Context, acct store.Account, inv store.Invite) (string, error) {
	id, err := auth.NewID("gr")
	if err != nil {
		return "", err
	}
	g := store.Grant{ID: id, CaregiverID: acct.ID, CaregiverName: acct.DisplayName, Scopes: inv.Scopes, EndsOn: inv.EndsOn, CreatedAt: c.Now()}
	if _, err := c.Store.UpdatePatient(ctx, inv.PatientID, func(pt store.Patient) (store.Patient, error) {
		audit.Touch(ctx, pt.ID, g.ID)
		audit.Granted(ctx) // the invite code is the caregiver's permission
		// One standing grant per caregiver: a new invite replaces the old grant.
		for i := range pt.Grants {
			if pt.Grants[i].CaregiverID == acct.ID && pt.Grants[i].RevokedAt.IsZero() {
				pt.Grants[i].RevokedAt = g.CreatedAt
			}
		}
		pt.Grants = append(pt.Grants, g)
		return pt, nil
	}); err != nil {
		return "", err
	}
	if _, err := c.Store.UpdateAccount(ctx, acct.ID, func(a store.Account) (store.Account, error) {
		if !slices.Contains(a.PatientIDs, inv.PatientID) {
			a.PatientIDs = append(a.PatientIDs, inv.PatientID)
		}
		return a, nil
	}); err != nil {
		return "", err
	}
	return g.ID, nil
}

// ListCaregivers implements mtm.v1.PatientService.ListCaregivers for the
// patient and for pharmacists of the patient's pharmacy.
func (s *PatientService) ListCaregivers(ctx context.Context, req *connect.Request[mtmv1.ListCaregiversRequest]) (*connect.Response[mtmv1.ListCaregiversResponse], error) {
	_, pt, err := s.cfg.loadForPatientOrCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListCaregiversResponse{}
	for _, g := range pt.Grants {
		out.Grants = append(out.Grants, grantToProto(g))
	}
	return connect.NewResponse(out), nil
}

// RevokeCaregiver implements mtm.v1.PatientService.RevokeCaregiver. The
// caregiver's next call is refused.
func (s *PatientService) RevokeCaregiver(ctx context.Context, req *connect.Request[mtmv1.RevokeCaregiverRequest]) (*connect.Response[mtmv1.RevokeCaregiverResponse], error) {
	m := req.Msg
	_, err := s.cfg.updateForPatientSide(ctx, m.GetPatientId(), scopeSelf, func(_ auth.Principal, pt *store.Patient) error {
		for i := range pt.Grants {
			if pt.Grants[i].ID == m.GetGrantId() {
				if pt.Grants[i].RevokedAt.IsZero() {
					pt.Grants[i].RevokedAt = s.cfg.Now()
				}
				audit.Touch(ctx, pt.ID, m.GetGrantId())
				return nil
			}
		}
		return notFound("grant")
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RevokeCaregiverResponse{}), nil
}

// ListAccessEvents implements mtm.v1.PatientService.ListAccessEvents: the
// "who accessed my record" report, for the patient and for pharmacists of
// the patient's pharmacy. The page token is the last event's id.
func (s *PatientService) ListAccessEvents(ctx context.Context, req *connect.Request[mtmv1.ListAccessEventsRequest]) (*connect.Response[mtmv1.ListAccessEventsResponse], error) {
	c, m := s.cfg, req.Msg
	_, pt, err := c.loadForPatientOrCare(ctx, m.GetPatientId())
	if err != nil {
		return nil, err
	}
	size := int(m.GetPageSize())
	if size == 0 {
		size = 50
	}
	events, err := c.Store.ListAuditEvents(ctx, pt.ID, m.GetPageToken(), size)
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListAccessEventsResponse{}
	names := map[string]string{pt.ID: pt.GivenName + " " + pt.FamilyName}
	for _, g := range pt.Grants {
		names[g.CaregiverID] = g.CaregiverName
	}
	for _, ev := range events {
		name, ok := names[ev.ActorID]
		if !ok && ev.ActorRole.IsStaff() {
			if a, err := c.Store.GetAccount(ctx, ev.ActorID); err == nil {
				name = a.DisplayName
			}
			names[ev.ActorID] = name
		}
		out.Events = append(out.Events, &mtmv1.AccessEvent{Time: ts(ev.Time), ActorId: ev.ActorID, ActorRole: roleToProto[ev.ActorRole],
			ActorName: name, Procedure: ev.Procedure, Allowed: ev.EffectiveOutcome() == store.OutcomeAllowed,
			Outcome: outcomeToProto[ev.EffectiveOutcome()], Code: ev.Code})
	}
	if len(events) == size {
		out.NextPageToken = events[len(events)-1].ID
	}
	return connect.NewResponse(out), nil
}

package auth

import (
	"context"
	"errors"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// Principal is who is calling, from a verified access token.
type Principal struct {
	Subject    string     // patient id or account id
	Role       store.Role // what the caller is to the service
	PharmacyID string     // staff only; "" otherwise
	SessionID  string     // refresh-token family id the access token was issued under
}

// validate reports whether p is a principal the service can have: a
// subject, a known role, a pharmacy exactly when the role is staff.
func (p Principal) validate() error {
	switch {
	case p.Subject == "":
		return errors.New("empty subject")
	case !knownRole(p.Role):
		return errors.New("unknown role")
	case p.Role.IsStaff() && p.PharmacyID == "":
		return errors.New("staff principal without pharmacy")
	case !p.Role.IsStaff() && p.PharmacyID != "":
		return errors.New("pharmacy on a non-staff principal")
	}
	return nil
}

func knownRole(r store.Role) bool {
	switch r {
	case store.RolePatient, store.RoleCaregiver, store.RolePharmacist, store.RolePharmacyAdmin:
		return true
	}
	return false
}

type principalKey struct{}

// caller is what the context carries under principalKey: the principal
// and, when an access token authenticated it, the token's expiry (zero
// otherwise). One value, so that an authenticated call adds one context
// layer, not two.
type caller struct {
	Principal
	expires time.Time
}

// WithPrincipal returns a copy of ctx that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, caller{Principal: p})
}

// PrincipalFrom returns the principal put into ctx by WithPrincipal (the
// interceptor does this after verifying the access token), and false when
// there is none, as on public procedures.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	c, ok := ctx.Value(principalKey{}).(caller)
	return c.Principal, ok
}

package api

import (
	"context"
	"errors"
	"github.com/mtmapp/mtm/backend/clinical"
	"time"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

// Who may act on a patient's record through the patient-facing API is
// decided here, against the record's current state on every call (a
// revoked grant stops working at once):
//
//   - the patient themselves, for everything;
//   - a caregiver holding an unrevoked, unexpired grant with the scope the
//     call needs (scopeSelf: only the patient may do it);
//   - pharmacy staff act through CareService, where they see only the
//     patients of their own pharmacy.
//
// A record the caller may not see and one that does not exist give the
// same not_found answer.

// scopeSelf marks calls only the patient may make (preferences, caregiver
// management, the access report).
const scopeSelf store.Scope = ""

// scopeAnyGrant marks calls any caregiver with a standing grant may make,
// whatever its scopes (the patient's name and preferences).
const scopeAnyGrant store.Scope = "*"

// principal returns the verified caller or unauthenticated.
func principal(ctx context.Context) (auth.Principal, error) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || p.Subject == "" {
		return auth.Principal{}, errUnauthenticated
	}
	return p, nil
}

// staff returns the caller when they are a pharmacist or pharmacy admin.
func staff(ctx context.Context) (auth.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, err
	}
	if !p.Role.IsStaff() || p.PharmacyID == "" {
		return p, errStaffOnly
	}
	return p, nil
}

// patientSide returns the caller when they are a patient or caregiver.
func patientSide(ctx context.Context) (auth.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, err
	}
	if p.Role != store.RolePatient && p.Role != store.RoleCaregiver {
		return p, errPatientSideOnly
	}
	return p, nil
}

// today is the patient's calendar date now, in their time zone.
func today(pt store.Patient, now time.Time) store.Date {
	if loc, err := clinical.Location(pt.TimeZone); err == nil {
		now = now.In(loc)
	}
	return store.DateOf(now)
}

// mayActFor reports whether the caller may do something needing scope to
// this patient's record through the patient-facing API.
func mayActFor(p auth.Principal, pt store.Patient, scope store.Scope, now time.Time) bool {
	switch p.Role {
	case store.RolePatient:
		return p.Subject == pt.ID
	case store.RoleCaregiver:
		if scope == scopeSelf {
			return false
		}
		d := today(pt, now)
		for _, g := range pt.Grants {
			if g.CaregiverID != p.Subject {
				continue
			}
			if scope == scopeAnyGrant && len(g.Scopes) > 0 {
				scope = g.Scopes[0]
			}
			if g.Allows(scope, d) {
				return true
			}
		}
	}
	return false
}

// mayCareFor reports whether a staff caller may touch this patient's record:
// only patients of the caller's own pharmacy.
func mayCareFor(p auth.Principal, pt store.Patient) bool {
	return p.Role.IsStaff() && p.PharmacyID != "" && p.PharmacyID == pt.PharmacyID
}

// load reads the patient and answers not_found both when it does not exist
// and when may refuses it. The audit note is set as soon as the record is
// known to exist, so a refused look at a real record enters its report.
func (c Config) load(ctx context.Context, patientID string, may func(store.Patient) bool) (store.Patient, error) {
	pt, err := c.Store.GetPatient(ctx, patientID)
	return admit(ctx, pt, err, may)
}

// view is load for a caller that only looks at the record (an access
// check, a name, the grants): it takes the store's shared record
// (store.PatientWithParts, one round trip on Redis, no copy on a cache
// hit), which it and its callers must not change.
func (c Config) view(ctx context.Context, patientID string, may func(store.Patient) bool) (store.Patient, error) {
	pt, _, err := c.Store.PatientWithParts(ctx, patientID)
	return admit(ctx, pt, err, may)
}

// admit is load's check of the record read (or of the error reading it):
// the audit event learns the patient, and a record the caller may not see
// looks like one that does not exist.
func admit(ctx context.Context, pt store.Patient, err error, may func(store.Patient) bool) (store.Patient, error) {
	if errors.Is(err, store.ErrNotFound) {
		return store.Patient{}, errPatientNotFound
	}
	if err != nil {
		return store.Patient{}, err
	}
	audit.Touch(ctx, pt.ID, "")
	if !may(pt) {
		return store.Patient{}, errPatientNotFound
	}
	audit.Granted(ctx)
	return pt, nil
}

// loadForPatientSide loads the patient for a patient-facing call needing
// scope.
func (c Config) loadForPatientSide(ctx context.Context, patientID string, scope store.Scope) (auth.Principal, store.Patient, error) {
	p, may, err := c.patientSideAccess(ctx, scope)
	if err != nil {
		return p, store.Patient{}, err
	}
	pt, err := c.load(ctx, patientID, may)
	return p, pt, err
}

// patientSideAccess is the caller of a patient-facing call and the check a
// record must pass for it with scope.
func (c Config) patientSideAccess(ctx context.Context, scope store.Scope) (auth.Principal, func(store.Patient) bool, error) {
	p, err := patientSide(ctx)
	if err != nil {
		return p, nil, err
	}
	now := c.Now()
	return p, func(pt store.Patient) bool { return mayActFor(p, pt, scope, now) }, nil
}

// loadForCare loads the patient for a pharmacist's call.
func (c Config) loadForCare(ctx context.Context, patientID string) (auth.Principal, store.Patient, error) {
	p, err := staff(ctx)
	if err != nil {
		return p, store.Patient{}, err
	}
	pt, err := c.load(ctx, patientID, func(pt store.Patient) bool { return mayCareFor(p, pt) })
	return p, pt, err
}

// loadForPatientOrCare loads the patient for calls both sides may make
// (the caregiver list, the access report): the patient, or staff of the
// patient's pharmacy.
func (c Config) loadForPatientOrCare(ctx context.Context, patientID string) (auth.Principal, store.Patient, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, store.Patient{}, err
	}
	if p.Role.IsStaff() {
		return c.loadForCare(ctx, patientID)
	}
	return c.loadForPatientSide(ctx, patientID, scopeSelf)
}

// update applies fn atomically to a patient the caller may touch, checking
// permission again inside the update against the state being written.
// The store may run the update more than once: the audit event says
// granted only when the run that counted passed the check.
func (c Config) update(ctx context.Context, patientID string, may func(store.Patient) bool, p auth.Principal, fn func(auth.Principal, *store.Patient) error) (store.Patient, error) {
	granted := false
	pt, err := c.Store.UpdatePatient(ctx, patientID, func(pt store.Patient) (store.Patient, error) {
		audit.Touch(ctx, pt.ID, "")
		if granted = may(pt); !granted {
			return pt, errPatientNotFound
		}
		err := fn(p, &pt)
		pt.UpdatedAt = c.Now()
		if err == nil {
			c.worklistDates(&pt) // the days the patient joins the pharmacy's work lists
		}
		return pt, err
	})
	if granted {
		audit.Granted(ctx)
	}
	if errors.Is(err, store.ErrNotFound) {
		return pt, errPatientNotFound
	}
	return pt, err
}

// updateForCare applies fn to a patient of the caller's pharmacy.
func (c Config) updateForCare(ctx context.Context, patientID string, fn func(auth.Principal, *store.Patient) error) (store.Patient, error) {
	p, err := staff(ctx)
	if err != nil {
		return store.Patient{}, err
	}
	since, notify := c.beforeCareWrite(ctx, patientID)
	pt, err := c.update(ctx, patientID, func(pt store.Patient) bool { return mayCareFor(p, pt) }, p, fn)
	if err == nil && notify {
		c.RecordNotifier.RecordChanged(ctx, patientID, since)
	}
	return pt, err
}

// updateForPatientSide applies fn to a record the caller may act on with
// scope.
func (c Config) updateForPatientSide(ctx context.Context, patientID string, scope store.Scope, fn func(auth.Principal, *store.Patient) error) (store.Patient, error) {
	p, err := patientSide(ctx)
	if err != nil {
		return store.Patient{}, err
	}
	now := c.Now()
	return c.update(ctx, patientID, func(pt store.Patient) bool { return mayActFor(p, pt, scope, now) }, p, fn)
}

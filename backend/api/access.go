package api

import (
	"context"
	"errors"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

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

// mayActFor reports whether the caller may touch this patient's record
// through the patient-facing API: the patient themselves. Caregivers act
// under grants, which arrive with the caregiver issue; until then they see
// no patient.
func mayActFor(p auth.Principal, pt store.Patient) bool {
	switch p.Role {
	case store.RolePatient:
		return p.Subject == pt.ID
	default:
		return false
	}
}

// mayCareFor reports whether a staff caller may touch this patient's record:
// only patients of the caller's own pharmacy.
func mayCareFor(p auth.Principal, pt store.Patient) bool {
	return p.Role.IsStaff() && p.PharmacyID != "" && p.PharmacyID == pt.PharmacyID
}

// loadForPatientSide loads the patient for a patient-facing call. A patient
// the caller may not see and a missing one give the same not_found.
func (c Config) loadForPatientSide(ctx context.Context, patientID string) (auth.Principal, store.Patient, error) {
	p, err := principal(ctx)
	if err != nil {
		return p, store.Patient{}, err
	}
	if p.Role.IsStaff() {
		return p, store.Patient{}, errPatientSideOnly
	}
	if p.Role == store.RolePatient && p.Subject != patientID {
		return p, store.Patient{}, errPatientNotFound
	}
	pt, err := c.Store.GetPatient(ctx, patientID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !mayActFor(p, pt)) {
		return p, store.Patient{}, errPatientNotFound
	}
	return p, pt, err
}

// loadForCare loads the patient for a pharmacist's call, under the same
// not_found rule.
func (c Config) loadForCare(ctx context.Context, patientID string) (auth.Principal, store.Patient, error) {
	p, err := staff(ctx)
	if err != nil {
		return p, store.Patient{}, err
	}
	pt, err := c.Store.GetPatient(ctx, patientID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !mayCareFor(p, pt)) {
		return p, store.Patient{}, errPatientNotFound
	}
	return p, pt, err
}

// updateForCare applies fn to a patient of the caller's pharmacy, checking
// the pharmacy again inside the atomic update.
func (c Config) updateForCare(ctx context.Context, patientID string, fn func(auth.Principal, *store.Patient) error) (store.Patient, error) {
	p, err := staff(ctx)
	if err != nil {
		return store.Patient{}, err
	}
	pt, err := c.Store.UpdatePatient(ctx, patientID, func(pt store.Patient) (store.Patient, error) {
		if !mayCareFor(p, pt) {
			return pt, errPatientNotFound
		}
		err := fn(p, &pt)
		pt.UpdatedAt = c.Now()
		return pt, err
	})
	if errors.Is(err, store.ErrNotFound) {
		return pt, errPatientNotFound
	}
	return pt, err
}

// updateForPatientSide applies fn to the caller's own record (or one they
// act for), atomically.
func (c Config) updateForPatientSide(ctx context.Context, patientID string, fn func(auth.Principal, *store.Patient) error) (store.Patient, error) {
	p, err := principal(ctx)
	if err != nil {
		return store.Patient{}, err
	}
	if p.Role.IsStaff() {
		return store.Patient{}, errPatientSideOnly
	}
	pt, err := c.Store.UpdatePatient(ctx, patientID, func(pt store.Patient) (store.Patient, error) {
		if !mayActFor(p, pt) {
			return pt, errPatientNotFound
		}
		err := fn(p, &pt)
		pt.UpdatedAt = c.Now()
		return pt, err
	})
	if errors.Is(err, store.ErrNotFound) {
		return pt, errPatientNotFound
	}
	return pt, err
}

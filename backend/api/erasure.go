package api

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// DeletePatient implements mtm.v1.CareService.DeletePatient: a pharmacy
// admin erases a patient of their pharmacy for good (store.AtRest). The
// request repeats the patient's family name; a mismatch deletes nothing.
//
// The call's audit event goes to the archive only (ids, no names): the
// patient's own access report is erased with them, and writing the event
// there would leave a trace of the patient in the store.
func (s *CareService) DeletePatient(ctx context.Context, req *connect.Request[mtmv1.DeletePatientRequest]) (*connect.Response[mtmv1.DeletePatientResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != store.RolePharmacyAdmin {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("only a pharmacy admin may delete a patient"))
	}
	pt, err := c.Store.GetPatient(ctx, m.GetPatientId())
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPatientNotFound
	}
	if err != nil {
		return nil, err
	}
	if !mayCareFor(p, pt) {
		audit.Touch(ctx, pt.ID, "") // a refused look at a real record enters its report
		return nil, errPatientNotFound
	}
	if !sameName(m.GetConfirmFamilyName(), pt.FamilyName) {
		audit.Touch(ctx, pt.ID, "")
		audit.Granted(ctx)
		return nil, invalidField("confirm_family_name", "does not match the patient's family name; nothing was deleted")
	}
	erased, err := c.Store.DeletePatient(ctx, pt.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errPatientNotFound // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	c.answers.forget(pt.ID)
	out := &mtmv1.DeletePatientResponse{Erased: map[string]int32{}}
	for kind, n := range erased.Counts {
		out.Erased[kind] = int32(n)
	}
	return connect.NewResponse(out), nil
}

// sameName compares names as people type them again: case and runs of
// spaces do not matter.
func sameName(a, b string) bool {
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	return norm(a) == norm(b)
}

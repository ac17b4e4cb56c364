package api

import (
	"context"
	"slices"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// defaultResolvedLimit is how many resolved self-reports
// ListMySelfReportedMedications returns when the caller does not say.
const defaultResolvedLimit = 20

// ListMySelfReportedMedications implements
// mtm.v1.PatientService.ListMySelfReportedMedications: the read side of
// ReportSelfMedication for the patient, or a caregiver with the
// view-medicines scope. Pending reports come first, oldest first (at most
// maxPendingSelfReports); resolved ones follow when asked for, most
// recently resolved first, at most resolved_limit of them.
func (s *PatientService) ListMySelfReportedMedications(ctx context.Context, req *connect.Request[mtmv1.ListMySelfReportedMedicationsRequest]) (*connect.Response[mtmv1.ListMySelfReportedMedicationsResponse], error) {
	m := req.Msg
	_, pt, err := s.cfg.loadForPatientSide(ctx, m.GetPatientId(), store.ScopeViewMedicines)
	if err != nil {
		return nil, err
	}
	var pending, resolved []store.SelfReport
	for _, r := range pt.SelfReports {
		if r.Status == selfReportPending {
			pending = append(pending, r)
		} else {
			resolved = append(resolved, r)
		}
	}
	slices.SortStableFunc(pending, func(a, b store.SelfReport) int { return a.ReportedAt.Compare(b.ReportedAt) })
	slices.SortStableFunc(resolved, func(a, b store.SelfReport) int { return b.ResolvedAt.Compare(a.ResolvedAt) })
	out := &mtmv1.ListMySelfReportedMedicationsResponse{}
	for _, r := range pending {
		out.Reports = append(out.Reports, selfReportToProto(r))
	}
	if m.GetIncludeResolved() {
		limit := int(m.GetResolvedLimit())
		if limit == 0 {
			limit = defaultResolvedLimit
		}
		if len(resolved) > limit {
			resolved, out.MoreResolved = resolved[:limit], true
		}
		for _, r := range resolved {
			out.Reports = append(out.Reports, selfReportToProto(r))
		}
	}
	return connect.NewResponse(out), nil
}

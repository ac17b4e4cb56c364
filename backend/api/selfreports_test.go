package api_test

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestPatientSeesWhatTheyReported: the app lists the medicines its
// patient reported, pending ones first, and after the pharmacist's
// decision sees it accepted (with the PML row) or declined (with the
// reason); the list of resolved ones is bounded.
func TestPatientSeesWhatTheyReported(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_a", "rph@a.test")
		pt := e.enroll(rph, "Ann")
		me, care := e.patientClient(pt.token), e.careClient(rph)
		report := func(name string) string {
			t.Helper()
			res, err := me.ReportSelfMedication(ctx, req(&mtmv1.ReportSelfMedicationRequest{PatientId: pt.id, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_HERBAL, Name: name, HowIUseIt: "1 capsule daily"}))
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(60e9)
			return res.Msg.GetReportId()
		}
		wort, fishOil, ginkgo := report("St John's wort"), report("Fish oil"), report("Ginkgo")
		if _, err := care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: pt.id, ReportId: wort,
			Decision: mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, DeclineReason: "Interacts with your sertraline"})); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(60e9)
		acc, err := care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: pt.id, ReportId: fishOil,
			Decision: mtmv1.SelfReportDecision_SELF_REPORT_DECISION_ACCEPT}))
		if err != nil {
			t.Fatal(err)
		}

		pending, err := me.ListMySelfReportedMedications(ctx, req(&mtmv1.ListMySelfReportedMedicationsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if got := pending.Msg.GetReports(); len(got) != 1 || got[0].GetId() != ginkgo || got[0].GetStatus() != mtmv1.SelfReportStatus_SELF_REPORT_STATUS_PENDING_REVIEW {
			t.Fatalf("pending = %v, want Ginkgo alone", got)
		}

		all, err := me.ListMySelfReportedMedications(ctx, req(&mtmv1.ListMySelfReportedMedicationsRequest{PatientId: pt.id, IncludeResolved: true}))
		if err != nil {
			t.Fatal(err)
		}
		got := all.Msg.GetReports()
		if len(got) != 3 || got[0].GetId() != ginkgo || got[1].GetId() != fishOil || got[2].GetId() != wort || all.Msg.GetMoreResolved() {
			t.Fatalf("reports = %v, want Ginkgo (pending), Fish oil (resolved last), St John's wort", got)
		}
		if got[1].GetStatus() != mtmv1.SelfReportStatus_SELF_REPORT_STATUS_ACCEPTED || got[1].GetMedicationId() != acc.Msg.GetMedication().GetId() {
			t.Errorf("accepted report = %v, want the PML row %s", got[1], acc.Msg.GetMedication().GetId())
		}
		if got[2].GetStatus() != mtmv1.SelfReportStatus_SELF_REPORT_STATUS_DECLINED || got[2].GetDeclineReason() != "Interacts with your sertraline" {
			t.Errorf("declined report = %v", got[2])
		}

		one, err := me.ListMySelfReportedMedications(ctx, req(&mtmv1.ListMySelfReportedMedicationsRequest{PatientId: pt.id, IncludeResolved: true, ResolvedLimit: 1}))
		if err != nil {
			t.Fatal(err)
		}
		if got := one.Msg.GetReports(); len(got) != 2 || got[1].GetId() != fishOil || !one.Msg.GetMoreResolved() {
			t.Fatalf("with resolved_limit 1: %v (more %v), want Ginkgo, Fish oil and more", got, one.Msg.GetMoreResolved())
		}
		_, err = me.ListMySelfReportedMedications(ctx, req(&mtmv1.ListMySelfReportedMedicationsRequest{PatientId: pt.id, IncludeResolved: true, ResolvedLimit: 101}))
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

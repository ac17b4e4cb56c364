package api_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// The authorization matrix: every RPC of the services that carry patient
// data, called by every kind of caller, for their own patient, another
// patient and a patient that does not exist. The expected outcome of each
// RPC is one rule in the table below; TestMatrixCoversEveryRPC fails when an
// RPC is added without a row.

type actor int

const (
	anonymous     actor = iota
	patientSelf         // the patient "own" refers to
	caregiverFull       // grant for own with every scope
	caregiverNone       // grant for own with only missed-dose alerts
	caregiverGone       // grant for own, revoked
	pharmacistOwn       // pharmacy of own and other
	pharmacistFar       // another pharmacy
	numActors
)

var actorNames = [...]string{"anonymous", "patient", "caregiver(all scopes)", "caregiver(no scope)", "caregiver(revoked)", "pharmacist(own pharmacy)", "pharmacist(other pharmacy)"}

type target int

const (
	ownPatient target = iota
	otherPatient
	missingPatient
)

var targetNames = [...]string{"own patient", "another patient", "nonexistent patient"}

// rule names who may make a call; expected() turns it into an outcome.
type rule int

const (
	patientOrCaregiverWithScope rule = iota // the patient, or a caregiver whose grant has the scope
	patientOrAnyCaregiver                   // the patient, or a caregiver with any standing grant
	onlyThePatient                          // the patient alone
	patientOrStaff                          // the patient, or pharmacists of the patient's pharmacy
	onlyStaff                               // pharmacists of the patient's pharmacy
	onlyStaffNoTarget                       // any pharmacist; no patient named
	onlyCaregiverNoTarget                   // any caregiver; no patient named
	anySignedInNoTarget                     // any signed-in caller; no patient named
	patientWithScopeOrStaff                 // the patient, a caregiver whose grant has the scope, or pharmacists of the patient's pharmacy
	notYetImplemented                       // any signed-in caller gets unimplemented
)

// expected is the outcome (nil for success) of actor a calling an RPC with
// rule r about target t. It is the whole access policy in one place.
func expected(r rule, a actor, t target) connect.Code {
	const ok connect.Code = 0
	if a == anonymous {
		return connect.CodeUnauthenticated
	}
	staff := a == pharmacistOwn || a == pharmacistFar
	caregiver := a == caregiverFull || a == caregiverNone || a == caregiverGone
	switch r {
	case notYetImplemented:
		return connect.CodeUnimplemented
	case anySignedInNoTarget:
		return ok
	case onlyStaffNoTarget:
		if staff {
			return ok
		}
		return connect.CodePermissionDenied
	case onlyCaregiverNoTarget:
		if caregiver {
			return connect.CodeNotFound // the matrix presents an invite code that does not exist
		}
		return connect.CodePermissionDenied
	case onlyStaff:
		if !staff {
			return connect.CodePermissionDenied
		}
		if a == pharmacistOwn && t != missingPatient {
			return ok
		}
		return connect.CodeNotFound
	case patientWithScopeOrStaff:
		if a == pharmacistOwn && t != missingPatient || t == ownPatient && (a == patientSelf || a == caregiverFull) {
			return ok
		}
		return connect.CodeNotFound
	case patientOrStaff:
		if a == pharmacistOwn && t != missingPatient || a == patientSelf && t == ownPatient {
			return ok
		}
		return connect.CodeNotFound
	}
	if staff {
		return connect.CodePermissionDenied
	}
	if t != ownPatient {
		return connect.CodeNotFound
	}
	switch {
	case a == patientSelf:
		return ok
	case r == patientOrCaregiverWithScope && a == caregiverFull,
		r == patientOrAnyCaregiver && (a == caregiverFull || a == caregiverNone):
		return ok
	}
	return connect.CodeNotFound
}

// ids are the records a call names: a patient and objects inside them.
type ids struct {
	patient, allergy, grant      string
	medication, stopMedication   string
	actionItem, changeActionItem string
	medVersion                   int64
	review, selfReport           string // a review with one intervention, a pending self-report
	condition, removeCondition   string // ongoing inpatient stays: one the matrix ends, one it removes
	thread, closeThread          string // threads about the patient
	doseSchedule, occurrence     string // a daily 08:00 schedule and its dose on the test day
	// Per caller, what that caller's delete removes: a push device it
	// registered and a dose schedule of its own, so that one caller's
	// success does not change another's answer.
	devices, schedules [numActors]string
}

// clients are the typed clients of one caller.
type clients struct {
	patient mtmv1connect.PatientServiceClient
	care    mtmv1connect.CareServiceClient
	msg     mtmv1connect.MessagingServiceClient
	bench   mtmv1connect.BenchServiceClient
}

type row struct {
	procedure string
	rule      rule
	call      func(ctx context.Context, c clients, x ids, a actor) error
}

func discard[T any](_ *connect.Response[T], err error) error { return err }

func req[T any](m *T) *connect.Request[T] { return connect.NewRequest(m) }

// firstOfStream opens a server stream and reports whether it delivers its
// first response (nil) or ends with an error first. It cancels the stream
// before closing it (Close alone would wait for the stream's end).
func firstOfStream[T any](ctx context.Context, open func(context.Context) (*connect.ServerStreamForClient[T], error)) error {
	ctx, cancel := context.WithCancel(ctx)
	s, err := open(ctx)
	if err != nil {
		cancel()
		return err
	}
	defer s.Close()
	defer cancel()
	if s.Receive() {
		return nil
	}
	if s.Err() == nil {
		return errors.New("stream ended without a response")
	}
	return s.Err()
}

// matrix is the table: one row per RPC.
var matrix = []row{
	// PatientService.
	{mtmv1connect.PatientServiceGetProfileProcedure, patientOrAnyCaregiver, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.GetProfile(ctx, req(&mtmv1.GetProfileRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceGetChangesProcedure, patientOrAnyCaregiver, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.GetChanges(ctx, req(&mtmv1.GetChangesRequest{PatientId: x.patient, Cursor: "0"})))
	}},
	{mtmv1connect.PatientServiceUpdatePreferencesProcedure, onlyThePatient, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: x.patient, TimeZone: "America/Denver"})))
	}},
	{mtmv1connect.PatientServiceGetMedicationListProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.GetMedicationList(ctx, req(&mtmv1.GetMedicationListRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceGetActionPlanProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.GetActionPlan(ctx, req(&mtmv1.GetActionPlanRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceRecordActionProgressProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.RecordActionProgress(ctx, req(&mtmv1.RecordActionProgressRequest{PatientId: x.patient, ActionItemId: x.actionItem, WhatIDid: "did it", DoneOn: "2026-03-01"})))
	}},
	{mtmv1connect.PatientServiceReportSelfMedicationProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ReportSelfMedication(ctx, req(&mtmv1.ReportSelfMedicationRequest{PatientId: x.patient, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC, Name: "Ibuprofen"})))
	}},
	{mtmv1connect.PatientServiceListMySelfReportedMedicationsProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ListMySelfReportedMedications(ctx, req(&mtmv1.ListMySelfReportedMedicationsRequest{PatientId: x.patient, IncludeResolved: true})))
	}},
	{mtmv1connect.PatientServiceRegisterDeviceProcedure, patientOrAnyCaregiver, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: x.patient, FcmToken: "tok", Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_ANDROID})))
	}},
	{mtmv1connect.PatientServiceUnregisterDeviceProcedure, patientOrAnyCaregiver, func(ctx context.Context, c clients, x ids, a actor) error {
		return discard(c.patient.UnregisterDevice(ctx, req(&mtmv1.UnregisterDeviceRequest{PatientId: x.patient, DeviceId: x.devices[a]})))
	}},
	{mtmv1connect.PatientServiceRecordDoseProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.RecordDose(ctx, req(&mtmv1.RecordDoseRequest{PatientId: x.patient, OccurrenceId: x.occurrence, Outcome: mtmv1.DoseOutcome_DOSE_OUTCOME_TAKEN})))
	}},
	{mtmv1connect.PatientServiceListUpcomingRemindersProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ListUpcomingReminders(ctx, req(&mtmv1.ListUpcomingRemindersRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceListNotificationHistoryProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ListNotificationHistory(ctx, req(&mtmv1.ListNotificationHistoryRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceGetAdherenceProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.GetAdherence(ctx, req(&mtmv1.GetAdherenceRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceInviteCaregiverProcedure, onlyThePatient, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.InviteCaregiver(ctx, req(&mtmv1.InviteCaregiverRequest{PatientId: x.patient, Scopes: []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_PLAN}})))
	}},
	{mtmv1connect.PatientServiceAcceptCaregiverInviteProcedure, onlyCaregiverNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.patient.AcceptCaregiverInvite(ctx, req(&mtmv1.AcceptCaregiverInviteRequest{InviteCode: "ZZZZ-ZZZZ-ZZZZ"})))
	}},
	{mtmv1connect.PatientServiceListCaregiversProcedure, patientOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ListCaregivers(ctx, req(&mtmv1.ListCaregiversRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceRevokeCaregiverProcedure, onlyThePatient, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.RevokeCaregiver(ctx, req(&mtmv1.RevokeCaregiverRequest{PatientId: x.patient, GrantId: x.grant})))
	}},
	{mtmv1connect.PatientServiceListAccessEventsProcedure, patientOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ListAccessEvents(ctx, req(&mtmv1.ListAccessEventsRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceExportRecordProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ExportRecord(ctx, req(&mtmv1.ExportRecordRequest{PatientId: x.patient, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON})))
	}},
	{mtmv1connect.PatientServiceSetDoseScheduleProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.SetDoseSchedule(ctx, req(&mtmv1.SetDoseScheduleRequest{PatientId: x.patient, MedicationId: x.medication, TimesOfDay: []int32{20 * 60}})))
	}},
	{mtmv1connect.PatientServiceListDoseSchedulesProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.patient.ListDoseSchedules(ctx, req(&mtmv1.ListDoseSchedulesRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.PatientServiceDeleteDoseScheduleProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, a actor) error {
		return discard(c.patient.DeleteDoseSchedule(ctx, req(&mtmv1.DeleteDoseScheduleRequest{PatientId: x.patient, ScheduleId: x.schedules[a]})))
	}},

	// CareService.
	{mtmv1connect.CareServiceEnrollPatientProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.EnrollPatient(ctx, req(&mtmv1.EnrollPatientRequest{GivenName: "New", FamilyName: "Patient", DateOfBirth: "1960-01-01", TimeZone: "UTC"})))
	}},
	{mtmv1connect.CareServiceIssueActivationCodeProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.IssueActivationCode(ctx, req(&mtmv1.IssueActivationCodeRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.CareServiceSearchPatientsProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.SearchPatients(ctx, req(&mtmv1.SearchPatientsRequest{})))
	}},
	{mtmv1connect.CareServiceGetPatientRecordProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.GetPatientRecord(ctx, req(&mtmv1.GetPatientRecordRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.CareServiceAddMedicationProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: x.patient, Medication: &mtmv1.MedicationFields{Name: "Lisinopril", HowIUseIt: "daily"}})))
	}},
	{mtmv1connect.CareServiceChangeMedicationProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ChangeMedication(ctx, req(&mtmv1.ChangeMedicationRequest{PatientId: x.patient, MedicationId: x.medication, ExpectedVersion: x.medVersion,
			Reason: "matrix", Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "twice a day"}})))
	}},
	{mtmv1connect.CareServiceStopMedicationProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.StopMedication(ctx, req(&mtmv1.StopMedicationRequest{PatientId: x.patient, MedicationId: x.stopMedication, ExpectedVersion: 1, StoppedOn: "2026-03-01", WhyStopped: "matrix"})))
	}},
	{mtmv1connect.CareServiceAddAllergyProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.AddAllergy(ctx, req(&mtmv1.AddAllergyRequest{PatientId: x.patient, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: "Latex"})))
	}},
	{mtmv1connect.CareServiceRemoveAllergyProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.RemoveAllergy(ctx, req(&mtmv1.RemoveAllergyRequest{PatientId: x.patient, AllergyId: x.allergy})))
	}},
	{mtmv1connect.CareServiceSetOtherInformationProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.SetOtherInformation(ctx, req(&mtmv1.SetOtherInformationRequest{PatientId: x.patient, OtherInformation: "matrix"})))
	}},
	{mtmv1connect.CareServiceRecordFillProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.RecordFill(ctx, req(&mtmv1.RecordFillRequest{PatientId: x.patient, MedicationId: x.medication, FilledOn: "2026-03-01", DaysSupply: 30})))
	}},
	{mtmv1connect.CareServiceAddActionItemProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.AddActionItem(ctx, req(&mtmv1.AddActionItemRequest{PatientId: x.patient, WhatWeTalkedAbout: "a", WhatINeedToDo: "b"})))
	}},
	{mtmv1connect.CareServiceChangeActionItemProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ChangeActionItem(ctx, req(&mtmv1.ChangeActionItemRequest{PatientId: x.patient, ActionItemId: x.changeActionItem, ExpectedVersion: 1, WhatWeTalkedAbout: "a", WhatINeedToDo: "b"})))
	}},
	{mtmv1connect.CareServiceSetActionPlanNotesProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.SetActionPlanNotes(ctx, req(&mtmv1.SetActionPlanNotesRequest{PatientId: x.patient, FollowUpPlan: "call"})))
	}},
	{mtmv1connect.CareServiceRecordReviewProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.RecordReview(ctx, req(&mtmv1.RecordReviewRequest{PatientId: x.patient, Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR, DeliveryMethod: mtmv1.DeliveryMethod_DELIVERY_METHOD_TELEPHONE, ReviewedOn: "2026-03-01"})))
	}},
	{mtmv1connect.CareServiceScheduleFollowUpProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ScheduleFollowUp(ctx, req(&mtmv1.ScheduleFollowUpRequest{PatientId: x.patient, DueAt: timestamppb.Now()})))
	}},
	{mtmv1connect.CareServiceGetPatientAdherenceProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.GetPatientAdherence(ctx, req(&mtmv1.GetPatientAdherenceRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.CareServiceListReviewsProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ListReviews(ctx, req(&mtmv1.ListReviewsRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.CareServiceSetInterventionOutcomeProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.SetInterventionOutcome(ctx, req(&mtmv1.SetInterventionOutcomeRequest{PatientId: x.patient, ReviewId: x.review, Outcome: "accepted"})))
	}},
	{mtmv1connect.CareServiceExportPatientRecordProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ExportPatientRecord(ctx, req(&mtmv1.ExportPatientRecordRequest{PatientId: x.patient, Format: mtmv1.ExportFormat_EXPORT_FORMAT_FHIR_R4_JSON})))
	}},
	{mtmv1connect.CareServiceRecordSummaryDeliveredProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.RecordSummaryDelivered(ctx, req(&mtmv1.RecordSummaryDeliveredRequest{PatientId: x.patient, ReviewId: x.review, DeliveredOn: "2026-03-01",
			Method: mtmv1.SummaryDeliveryMethod_SUMMARY_DELIVERY_METHOD_MAIL, Recipient: mtmv1.SummaryRecipient_SUMMARY_RECIPIENT_PATIENT})))
	}},
	{mtmv1connect.CareServiceSetPatientContactsProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.SetPatientContacts(ctx, req(&mtmv1.SetPatientContactsRequest{PatientId: x.patient, Phone: "217-555-0143"})))
	}},
	{mtmv1connect.CareServiceGetPharmacyProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.GetPharmacy(ctx, req(&mtmv1.GetPharmacyRequest{})))
	}},
	{mtmv1connect.CareServiceUpdatePharmacyProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.UpdatePharmacy(ctx, req(&mtmv1.UpdatePharmacyRequest{Name: "Matrix Pharmacy", Phone: "217-555-0100"})))
	}},
	{mtmv1connect.CareServiceListSelfReportedMedicationsProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ListSelfReportedMedications(ctx, req(&mtmv1.ListSelfReportedMedicationsRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.CareServiceResolveSelfReportedMedicationProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.ResolveSelfReportedMedication(ctx, req(&mtmv1.ResolveSelfReportedMedicationRequest{PatientId: x.patient, ReportId: x.selfReport,
			Decision: mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, DeclineReason: "matrix"})))
	}},
	{mtmv1connect.CareServiceListPatientsDueForCmrProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.ListPatientsDueForCmr(ctx, req(&mtmv1.ListPatientsDueForCmrRequest{})))
	}},
	{mtmv1connect.CareServiceListPatientsBelowAdherenceThresholdProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.ListPatientsBelowAdherenceThreshold(ctx, req(&mtmv1.ListPatientsBelowAdherenceThresholdRequest{})))
	}},
	{mtmv1connect.CareServiceListOverdueFollowUpsProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.care.ListOverdueFollowUps(ctx, req(&mtmv1.ListOverdueFollowUpsRequest{})))
	}},
	{mtmv1connect.CareServiceRecordClinicalConditionProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.RecordClinicalCondition(ctx, req(&mtmv1.RecordClinicalConditionRequest{PatientId: x.patient,
			Kind: mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_HOSPICE, From: "2026-02-25"})))
	}},
	{mtmv1connect.CareServiceEndClinicalConditionProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.EndClinicalCondition(ctx, req(&mtmv1.EndClinicalConditionRequest{PatientId: x.patient, ConditionId: x.condition, Through: "2026-02-27"})))
	}},
	{mtmv1connect.CareServiceRemoveClinicalConditionProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.RemoveClinicalCondition(ctx, req(&mtmv1.RemoveClinicalConditionRequest{PatientId: x.patient, ConditionId: x.removeCondition})))
	}},
	{mtmv1connect.CareServiceCreatePharmacistProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, a actor) error {
		return discard(c.care.CreatePharmacist(ctx, req(&mtmv1.CreatePharmacistRequest{Email: fmt.Sprintf("new%d@matrix.test", a), Password: "a long enough password", DisplayName: "New RPh"})))
	}},

	// MessagingService. Rows other than StartThread name a thread about
	// the target patient; the nonexistent target names a missing thread.
	// A stream that delivers its first response (a backlog message, an
	// inbox heartbeat) counts as allowed.
	{mtmv1connect.MessagingServiceStartThreadProcedure, patientOrCaregiverWithScope, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: x.patient, Subject: "q", ClientMessageId: "cm_00000001", Body: "hello"})))
	}},
	{mtmv1connect.MessagingServiceSendMessageProcedure, patientWithScopeOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.SendMessage(ctx, req(&mtmv1.SendMessageRequest{ThreadId: x.thread, ClientMessageId: "cm_00000002", Body: "hello"})))
	}},
	{mtmv1connect.MessagingServiceListThreadsProcedure, patientWithScopeOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.ListThreads(ctx, req(&mtmv1.ListThreadsRequest{PatientId: x.patient})))
	}},
	{mtmv1connect.MessagingServiceListMessagesProcedure, patientWithScopeOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.ListMessages(ctx, req(&mtmv1.ListMessagesRequest{ThreadId: x.thread})))
	}},
	{mtmv1connect.MessagingServiceMarkReadProcedure, patientWithScopeOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.MarkRead(ctx, req(&mtmv1.MarkReadRequest{ThreadId: x.thread, ReadThroughSeq: 1})))
	}},
	{mtmv1connect.MessagingServiceWatchThreadProcedure, patientWithScopeOrStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return firstOfStream(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[mtmv1.WatchThreadResponse], error) {
			return c.msg.WatchThread(ctx, req(&mtmv1.WatchThreadRequest{ThreadId: x.thread}))
		})
	}},
	{mtmv1connect.MessagingServiceListInboxProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.msg.ListInbox(ctx, req(&mtmv1.ListInboxRequest{})))
	}},
	{mtmv1connect.MessagingServiceClaimThreadProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.ClaimThread(ctx, req(&mtmv1.ClaimThreadRequest{ThreadId: x.thread})))
	}},
	{mtmv1connect.MessagingServiceCloseThreadProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.msg.CloseThread(ctx, req(&mtmv1.CloseThreadRequest{ThreadId: x.closeThread})))
	}},
	{mtmv1connect.MessagingServiceWatchInboxProcedure, onlyStaffNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return firstOfStream(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[mtmv1.WatchInboxResponse], error) {
			return c.msg.WatchInbox(ctx, req(&mtmv1.WatchInboxRequest{}))
		})
	}},

	// BenchService: the load test's baseline (mtmd --bench-endpoints).
	{mtmv1connect.BenchServiceEmptyProcedure, anySignedInNoTarget, func(ctx context.Context, c clients, _ ids, _ actor) error {
		return discard(c.bench.Empty(ctx, req(&mtmv1.EmptyRequest{})))
	}},

	// Last: a success erases the patient, which every row above needs.
	// The own pharmacy's pharmacist is its admin (a plain pharmacist is
	// refused: TestDeletePatient).
	{mtmv1connect.CareServiceDeletePatientProcedure, onlyStaff, func(ctx context.Context, c clients, x ids, _ actor) error {
		return discard(c.care.DeletePatient(ctx, req(&mtmv1.DeletePatientRequest{PatientId: x.patient, ConfirmFamilyName: "Tester"})))
	}},
}

// TestMatrixCoversEveryRPC fails when a service gains an RPC that has no
// row in the matrix.
func TestMatrixCoversEveryRPC(t *testing.T) {
	rows := map[string]bool{}
	for _, r := range matrix {
		if rows[r.procedure] {
			t.Errorf("two rows for %s", r.procedure)
		}
		rows[r.procedure] = true
	}
	for _, fd := range []protoreflect.FileDescriptor{mtmv1.File_mtm_v1_patient_proto, mtmv1.File_mtm_v1_care_proto, mtmv1.File_mtm_v1_messaging_proto, mtmv1.File_mtm_v1_bench_proto} {
		svcs := fd.Services()
		for i := range svcs.Len() {
			methods := svcs.Get(i).Methods()
			for j := range methods.Len() {
				proc := fmt.Sprintf("/%s/%s", svcs.Get(i).FullName(), methods.Get(j).Name())
				if !rows[proc] {
					t.Errorf("RPC %s has no row in the authorization matrix", proc)
				}
			}
		}
	}
}

// TestAuthorizationMatrix runs every row for every caller and target over
// the Connect and gRPC protocols.
func TestAuthorizationMatrix(t *testing.T) {
	forEachBackendAndProtocol(t, func(t *testing.T, e *env) {
		f := newMatrixFixture(t, e)
		for _, r := range matrix {
			for a := range numActors {
				targets := []target{ownPatient, otherPatient, missingPatient}
				if r.rule == onlyStaffNoTarget || r.rule == onlyCaregiverNoTarget || r.rule == anySignedInNoTarget {
					targets = targets[:1]
				}
				for _, tg := range targets {
					want := expected(r.rule, a, tg)
					err := r.call(context.Background(), f.clients[a], f.ids[tg], a)
					got := connect.Code(0)
					if err != nil {
						got = connect.CodeOf(err)
					}
					if got != want {
						t.Errorf("%s by %s for %s: got %v (%v), want %v", r.procedure, actorNames[a], targetNames[tg], codeName(got), err, codeName(want))
					}
				}
			}
		}
	})
}

func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

// matrixFixture holds the callers and records of the matrix.
type matrixFixture struct {
	clients [numActors]clients
	ids     [3]ids
}

func newMatrixFixture(t *testing.T, e *env) *matrixFixture {
	t.Helper()
	ctx := context.Background()
	rphOwn := e.pharmacy("ph_own", "rph@own.test")
	rphFar := e.pharmacy("ph_far", "rph@far.test")
	own := e.enroll(rphOwn, "Olive")
	other := e.enroll(rphOwn, "Otto")
	care := e.careClient(rphOwn)

	f := &matrixFixture{}
	for i, p := range []enrolled{own, other} {
		x := ids{patient: p.id}
		// Objects the matrix stops or changes are separate from those it
		// reads, so that one caller's success does not change another's answer.
		med := func() *mtmv1.Medication {
			res, err := care.AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: p.id, Medication: &mtmv1.MedicationFields{Name: "Metformin", HowIUseIt: "twice a day"}}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetMedication()
		}
		item := func() string {
			res, err := care.AddActionItem(ctx, req(&mtmv1.AddActionItemRequest{PatientId: p.id, WhatWeTalkedAbout: "a", WhatINeedToDo: "b"}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetActionItem().GetId()
		}
		m := med()
		x.medication, x.medVersion = m.GetId(), m.GetVersion()
		x.stopMedication = med().GetId()
		x.actionItem, x.changeActionItem = item(), item()
		al, err := care.AddAllergy(ctx, req(&mtmv1.AddAllergyRequest{PatientId: p.id, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: "Sulfa"}))
		if err != nil {
			t.Fatal(err)
		}
		x.allergy = al.Msg.GetAllergy().GetId()
		stay := func() string {
			res, err := care.RecordClinicalCondition(ctx, req(&mtmv1.RecordClinicalConditionRequest{PatientId: p.id,
				Kind: mtmv1.ClinicalConditionKind_CLINICAL_CONDITION_KIND_INPATIENT, From: "2026-02-20"}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetCondition().GetId()
		}
		x.condition, x.removeCondition = stay(), stay()
		x.review, x.selfReport = matrixClinicalRecords(t, e, rphOwn, p)
		x.doseSchedule, x.occurrence = matrixDoseSchedule(t, e, p, x.medication)
		f.ids[i] = x
	}
	f.ids[missingPatient] = ids{patient: "pt_missing", medication: "md_missing", stopMedication: "md_missing2", actionItem: "ai_missing",
		changeActionItem: "ai_missing2", allergy: "al_missing", grant: "gr_missing", medVersion: 1, condition: "cd_missing", removeCondition: "cd_missing2",
		thread: "th_missing", closeThread: "th_missing2", doseSchedule: "ds_missing", occurrence: missingOccurrence()}
	for i, p := range []enrolled{own, other} {
		msg := mtmv1connect.NewMessagingServiceClient(e.srv.Client(), e.srv.URL, e.clientOpts(p.token)...)
		start := func(cm string) string {
			res, err := msg.StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: p.id, Subject: "matrix", ClientMessageId: cm, Body: "a question"}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetThread().GetId()
		}
		f.ids[i].thread, f.ids[i].closeThread = start("cm_matrix_1"), start("cm_matrix_2")
	}

	f.ids[missingPatient].review, f.ids[missingPatient].selfReport = "rv_missing", "sr_missing"
	full := e.caregiver(own, "full@cg.test", allScopes())
	none := e.caregiver(own, "none@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_MISSED_DOSE_ALERTS})
	gone := e.caregiver(own, "gone@cg.test", allScopes())
	if _, err := e.patientClient(own.token).RevokeCaregiver(ctx, req(&mtmv1.RevokeCaregiverRequest{PatientId: own.id, GrantId: gone.grant})); err != nil {
		t.Fatal(err)
	}
	// The grant the matrix revokes is a spare one, so that revoking it
	// changes no caller's access.
	spare := e.caregiver(own, "spare@cg.test", allScopes())
	f.ids[ownPatient].grant = spare.grant
	f.ids[otherPatient].grant = spare.grant

	tokens := [numActors]string{
		anonymous: "", patientSelf: own.token, caregiverFull: full.token, caregiverNone: none.token,
		caregiverGone: gone.token, pharmacistOwn: rphOwn, pharmacistFar: rphFar,
	}
	matrixDeletables(t, e, f, own, other, tokens)
	for a, tok := range tokens {
		f.clients[a] = clients{
			patient: e.patientClient(tok),
			care:    e.careClient(tok),
			msg:     mtmv1connect.NewMessagingServiceClient(e.srv.Client(), e.srv.URL, e.clientOpts(tok)...),
			bench:   mtmv1connect.NewBenchServiceClient(e.srv.Client(), e.srv.URL, e.clientOpts(tok)...),
		}
	}
	return f
}

func allScopes() []mtmv1.CaregiverScope {
	return []mtmv1.CaregiverScope{
		mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES, mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_PLAN,
		mtmv1.CaregiverScope_CAREGIVER_SCOPE_MESSAGE, mtmv1.CaregiverScope_CAREGIVER_SCOPE_MISSED_DOSE_ALERTS,
		mtmv1.CaregiverScope_CAREGIVER_SCOPE_MANAGE_REMINDERS,
	}
}

// matrixDeletables registers the push devices and dose schedules the
// matrix deletes: for the own patient one per caller that may register
// (the patient and both standing caregivers) and one schedule per caller;
// for the other patient one of each, which every caller then names (a
// caller of the own patient's side must get not_found for them); for the
// missing patient ids that exist nowhere.
func matrixDeletables(t *testing.T, e *env, f *matrixFixture, own, other enrolled, tokens [numActors]string) {
	t.Helper()
	ctx := context.Background()
	device := func(token, patientID string) string {
		res, err := e.patientClient(token).RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: patientID, FcmToken: "fcm-" + token[len(token)-12:],
			Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_ANDROID}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetDeviceId()
	}
	schedule := func(p enrolled) string {
		id, _ := matrixDoseSchedule(t, e, p, f.ids[ownPatient].medication)
		return id
	}
	otherDevice := device(other.token, other.id)
	otherSchedule, _ := matrixDoseSchedule(t, e, other, f.ids[otherPatient].medication)
	for a := range numActors {
		f.ids[ownPatient].devices[a] = "dv_none"
		if a == patientSelf || a == caregiverFull || a == caregiverNone {
			f.ids[ownPatient].devices[a] = device(tokens[a], own.id)
		}
		f.ids[ownPatient].schedules[a] = schedule(own)
		f.ids[otherPatient].devices[a], f.ids[otherPatient].schedules[a] = otherDevice, otherSchedule
		f.ids[missingPatient].devices[a], f.ids[missingPatient].schedules[a] = "dv_missing", "ds_missing"
	}
}

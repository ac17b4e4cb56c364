package console

import (
	"fmt"
	"strings"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The words the pages show for the contract's enums, and the choices its
// forms offer (the option values are the enum names the handlers parse).

var deliveryMethods = []option{
	{"DELIVERY_METHOD_FACE_TO_FACE", "Face to face"},
	{"DELIVERY_METHOD_TELEPHONE", "Telephone"},
	{"DELIVERY_METHOD_TELEHEALTH", "Telehealth (video)"},
	{"DELIVERY_METHOD_OTHER", "Other"},
}

var problemCategories = []option{
	{"DRUG_THERAPY_PROBLEM_CATEGORY_UNNECESSARY_THERAPY", "Unnecessary drug therapy"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_NEEDS_ADDITIONAL_THERAPY", "Needs additional drug therapy"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_INEFFECTIVE_DRUG", "Ineffective drug"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_DOSAGE_TOO_LOW", "Dosage too low"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_ADVERSE_DRUG_REACTION", "Adverse drug reaction"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_DOSAGE_TOO_HIGH", "Dosage too high"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_ADHERENCE", "Adherence"},
	{"DRUG_THERAPY_PROBLEM_CATEGORY_OTHER", "Other (interaction, cost, access…)"},
}

var interventionActions = []option{
	{"INTERVENTION_ACTION_COUNSELLED_PATIENT", "Counselled the patient"},
	{"INTERVENTION_ACTION_RECOMMENDATION_TO_PRESCRIBER", "Recommendation to the prescriber"},
	{"INTERVENTION_ACTION_CHANGE_MADE_BY_PHARMACIST", "Change made by the pharmacist"},
}

var outcomeCodes = []option{
	{"INTERVENTION_OUTCOME_CODE_ACCEPTED_IMPLEMENTED", "Accepted and implemented"},
	{"INTERVENTION_OUTCOME_CODE_ACCEPTED_PARTIALLY_IMPLEMENTED", "Accepted, partly implemented"},
	{"INTERVENTION_OUTCOME_CODE_ACCEPTED_NOT_IMPLEMENTED", "Accepted, not implemented"},
	{"INTERVENTION_OUTCOME_CODE_NOT_ACCEPTED", "Not accepted"},
	{"INTERVENTION_OUTCOME_CODE_NO_RESPONSE", "No response"},
}

var summaryMethods = []option{
	{"SUMMARY_DELIVERY_METHOD_IN_PERSON", "In person"},
	{"SUMMARY_DELIVERY_METHOD_MAIL", "Mail"},
	{"SUMMARY_DELIVERY_METHOD_FAX", "Fax"},
	{"SUMMARY_DELIVERY_METHOD_EMAIL", "E-mail"},
	{"SUMMARY_DELIVERY_METHOD_SECURE_ELECTRONIC", "The app or a patient portal"},
}

var summaryRecipients = []option{
	{"SUMMARY_RECIPIENT_PATIENT", "The patient"},
	{"SUMMARY_RECIPIENT_CAREGIVER", "A caregiver"},
	{"SUMMARY_RECIPIENT_PRESCRIBER", "The prescriber"},
	{"SUMMARY_RECIPIENT_OTHER_AUTHORIZED", "Another authorized person"},
}

var reviewKinds = map[mtmv1.ReviewKind]string{
	mtmv1.ReviewKind_REVIEW_KIND_CMR: "Comprehensive Medication Review",
	mtmv1.ReviewKind_REVIEW_KIND_TMR: "Targeted Medication Review",
}

var interventionKinds = map[mtmv1.InterventionKind]string{
	mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION: "Intervention",
	mtmv1.InterventionKind_INTERVENTION_KIND_REFERRAL:     "Referral",
}

var selfKinds = map[mtmv1.SelfMedicationKind]string{
	mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC:        "Over the counter",
	mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_HERBAL:     "Herbal",
	mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_SUPPLEMENT: "Supplement",
}

var scopeLabels = map[mtmv1.CaregiverScope]string{
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES:     "see medicines",
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_PLAN:          "see the plan",
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_MESSAGE:            "message the pharmacy",
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_MISSED_DOSE_ALERTS: "get missed-dose alerts",
	mtmv1.CaregiverScope_CAREGIVER_SCOPE_MANAGE_REMINDERS:   "manage reminders",
}

var roleLabels = map[mtmv1.Role]string{
	mtmv1.Role_ROLE_PATIENT:        "patient",
	mtmv1.Role_ROLE_CAREGIVER:      "caregiver",
	mtmv1.Role_ROLE_PHARMACIST:     "pharmacist",
	mtmv1.Role_ROLE_PHARMACY_ADMIN: "pharmacy admin",
}

var accessOutcomes = map[mtmv1.AccessOutcome]string{
	mtmv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED:   "allowed",
	mtmv1.AccessOutcome_ACCESS_OUTCOME_DENIED:    "refused",
	mtmv1.AccessOutcome_ACCESS_OUTCOME_FAILED:    "failed",
	mtmv1.AccessOutcome_ACCESS_OUTCOME_THROTTLED: "throttled",
}

// fieldLabels name a refused form's fields beside the values entered.
var fieldLabels = map[string]string{
	"confirm_family_name": "Family name (confirmation)",
	"given_name":          "Given name", "family_name": "Family name", "date_of_birth": "Date of birth", "time_zone": "Time zone",
	"preferred_language": "Preferred language", "substance": "Substance", "reaction": "Reaction", "kind": "Kind",
	"other_information": "Other information", "follow_up_plan": "My follow-up plan", "questions": "Questions I want to ask",
	"address": "Address", "phone": "Phone", "relationship": "Relationship", "decline_reason": "Reason to decline",
	"filled_on": "Filled on", "days_supply": "Days' supply", "reviewed_on": "Reviewed on", "delivery_method": "Delivery method",
	"description": "Description", "referred_to": "Referred to", "outcome": "Outcome", "follow_up_on": "Follow-up date",
	"delivered_on": "Delivered on", "method": "How", "recipient": "To whom", "email": "E-mail", "password": "Password",
	"display_name": "Display name", "npi": "NPI", "tty": "TTY", "hours": "Opening hours", "plan_name": "Part D plan",
	"name": "Name", "strength": "Strength", "rxcui": "RxCUI", "how_i_use_it": "How I use it",
	"why_i_use_it": "Why I use it", "prescriber": "Prescriber", "prescriber_phone": "Prescriber's phone",
	"started_on": "Date started", "reason": "Why it changed", "stopped_on": "Stopped on", "why_stopped": "Why stopped",
	"what_we_talked_about": "What we talked about", "what_i_need_to_do": "What I need to do",
}

// fieldLabel names a form field, or a request field's path
// ("medication.how_i_use_it"), for the pharmacist.
func fieldLabel(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		path = path[i+1:]
	}
	if l, ok := fieldLabels[path]; ok {
		return l
	}
	return strings.ReplaceAll(path, "_", " ")
}

// labelOf is the label of the option whose value is v ("" when none).
func labelOf(opts []option, v string) string {
	for _, o := range opts {
		if o.Value == v {
			return o.Label
		}
	}
	return ""
}

// percent writes a 0-1 proportion as a whole percentage.
func percent(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// procedureLabel turns "/mtm.v1.CareService/GetPatientRecord" into
// "Get patient record (CareService)".
func procedureLabel(p string) string {
	svc, method, ok := strings.Cut(strings.TrimPrefix(p, "/mtm.v1."), "/")
	if !ok {
		return p
	}
	var b strings.Builder
	for i, r := range method {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String() + " (" + svc + ")"
}

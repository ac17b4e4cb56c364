package console

import (
	"html/template"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// pageFuncs are the template functions of the patient, review, work list,
// access and admin pages (added to funcs when the templates are parsed).
var pageFuncs = template.FuncMap{
	"patientPath": patientPath,
	"usDate":      usDate,
	"percent":     percent,
	"rows": func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	},
	"inc":       func(i int) int { return i + 1 },
	"medFields": func(id string, m *mtmv1.Medication) medicineForm { return medicineForm{ID: id, Med: m} },
	"itemConflict": func(c *recordConflict, id string) bool {
		return c != nil && c.Item != nil && c.Item.GetId() == id
	},
	"fieldLabel":          fieldLabel,
	"allergyKinds":        func() []option { return allergyKinds },
	"deliveryMethods":     func() []option { return deliveryMethods },
	"problemCategories":   func() []option { return problemCategories },
	"interventionActions": func() []option { return interventionActions },
	"outcomeCodes":        func() []option { return outcomeCodes },
	"summaryMethods":      func() []option { return summaryMethods },
	"summaryRecipients":   func() []option { return summaryRecipients },
	"allergyKind":         func(v mtmv1.AllergyKind) string { return labelOf(allergyKinds, v.String()) },
	"selfKind":            func(v mtmv1.SelfMedicationKind) string { return selfKinds[v] },
	"reviewKind":          func(v mtmv1.ReviewKind) string { return reviewKinds[v] },
	"deliveryMethod":      func(v mtmv1.DeliveryMethod) string { return labelOf(deliveryMethods, v.String()) },
	"problemCategory":     func(v mtmv1.DrugTherapyProblemCategory) string { return labelOf(problemCategories, v.String()) },
	"interventionKind":    func(v mtmv1.InterventionKind) string { return interventionKinds[v] },
	"interventionAction":  func(v mtmv1.InterventionAction) string { return labelOf(interventionActions, v.String()) },
	"outcomeCode":         func(v mtmv1.InterventionOutcomeCode) string { return labelOf(outcomeCodes, v.String()) },
	"summaryMethod":       func(v mtmv1.SummaryDeliveryMethod) string { return labelOf(summaryMethods, v.String()) },
	"summaryRecipient":    func(v mtmv1.SummaryRecipient) string { return labelOf(summaryRecipients, v.String()) },
	"scopeLabel":          func(v mtmv1.CaregiverScope) string { return scopeLabels[v] },
	"roleLabel":           func(v mtmv1.Role) string { return roleLabels[v] },
	"outcomeLabel":        func(v mtmv1.AccessOutcome) string { return accessOutcomes[v] },
	"procedureLabel":      procedureLabel,
}

// medicineForm is the data of the medicine-fields template.
type medicineForm struct {
	ID  string
	Med *mtmv1.Medication
}

// allergyKinds are the choices of the allergy form.
var allergyKinds = []option{
	{"ALLERGY_KIND_ALLERGY", "Allergy"},
	{"ALLERGY_KIND_SIDE_EFFECT", "Side effect"},
}

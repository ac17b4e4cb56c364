package console

import (
	"fmt"
	"net/http"
	"strconv"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The patient record: profile, PML (medicines, allergies, other
// information, fills), MAP (items, notes), contacts, self-reported
// medicines to accept or decline, and adherence. A change of a PML row or
// MAP item carries the version the page showed; a stale one is answered
// with the row as it is now and what the pharmacist had entered.

// recordData is what record.html shows.
type recordData struct {
	Head        patientHead
	Patient     *mtmv1.Patient
	PatientPath string
	Current     []pmlRow
	Stopped     []pmlRow
	Allergies   []*mtmv1.Allergy
	Other       string
	Items       []*mtmv1.ActionItem
	Plan        *mtmv1.MedicationActionPlan
	SelfReports []*mtmv1.SelfReportedMedication
	Today       string
	// Conflict is set when a change was refused as stale.
	Conflict *recordConflict
	// OpenAdd opens the add-medicine form (after a refused add).
	OpenAdd bool
	// Admin shows the pharmacy admin's actions (deleting the patient).
	Admin bool
}

// pmlRow is a PML row with its fills and adherence.
type pmlRow struct {
	*mtmv1.Medication
	Fills    []*mtmv1.Fill
	PDC      string // "87%", empty when not measured
	Below    bool
	Conflict bool // the row a stale edit was refused for
}

// recordConflict is a stale edit: the row as it is now and what the
// pharmacist tried.
type recordConflict struct {
	What       string // "medicine", "action item"
	Medication *mtmv1.Medication
	Item       *mtmv1.ActionItem
	Tried      []triedField
}

// triedField is one value of a refused form.
type triedField struct {
	Label, Value string
}

// recordNotices are the confirmations a change redirects with
// (?done=key): fixed texts, so nothing of the record enters a URL.
var recordNotices = map[string]string{
	"medicine-added":   "Medicine added.",
	"medicine-changed": "Medicine changed.",
	"medicine-stopped": "Medicine stopped; it stays in the history.",
	"fill-recorded":    "Fill recorded.",
	"allergy-added":    "Allergy or side effect added.",
	"allergy-removed":  "Allergy or side effect removed.",
	"other-saved":      "Other information saved.",
	"item-added":       "Action item added.",
	"item-changed":     "Action item changed.",
	"notes-saved":      "Plan notes saved.",
	"contacts-saved":   "Contacts saved.",
	"report-accepted":  "Self-reported medicine accepted onto the list.",
	"report-declined":  "Self-reported medicine declined.",
}

// readRecord reads the record page's data through CareService.
func readRecord(rq *Request, patientID string) (*recordData, error) {
	ctx, care := rq.Context(), rq.API.Care
	rec, err := care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: patientID}))
	if err != nil {
		return nil, err
	}
	self, err := care.ListSelfReportedMedications(ctx, connect.NewRequest(&mtmv1.ListSelfReportedMedicationsRequest{PatientId: patientID}))
	if err != nil {
		return nil, err
	}
	adh, err := care.GetPatientAdherence(ctx, connect.NewRequest(&mtmv1.GetPatientAdherenceRequest{PatientId: patientID}))
	if err != nil {
		return nil, err
	}
	pml, pt := rec.Msg.GetMedicationList(), rec.Msg.GetPatient()
	pdc := map[string]*mtmv1.MedicationAdherence{}
	for _, a := range adh.Msg.GetMedications() {
		pdc[a.GetMedicationId()] = a
	}
	fills := map[string][]*mtmv1.Fill{}
	for _, f := range pml.GetFills() {
		fills[f.GetMedicationId()] = append(fills[f.GetMedicationId()], f)
	}
	d := &recordData{
		Head:        patientHead{Patient: pt, Path: patientPath(patientID), Current: "record"},
		Patient:     pt,
		PatientPath: patientPath(patientID),
		Allergies:   pml.GetAllergies(),
		Other:       pml.GetOtherInformation(),
		Items:       rec.Msg.GetActionPlan().GetItems(),
		Plan:        rec.Msg.GetActionPlan(),
		SelfReports: self.Msg.GetReports(),
		Today:       rq.today(pt.GetTimeZone()),
	}
	for _, m := range pml.GetMedications() {
		row := pmlRow{Medication: m, Fills: fills[m.GetId()]}
		if a, ok := pdc[m.GetId()]; ok {
			row.PDC = fmt.Sprintf("%.0f%%", a.GetProportionOfDaysCovered()*100)
			row.Below = a.GetBelowThreshold()
		}
		if m.GetStoppedOn() == "" {
			d.Current = append(d.Current, row)
		} else {
			d.Stopped = append(d.Stopped, row)
		}
	}
	return d, nil
}

// serveRecord shows a patient's record.
func serveRecord(rq *Request) error {
	return showRecord(rq, http.StatusOK, nil, nil)
}

// showRecord reads the record and renders it, after edit adjusted it.
func showRecord(rq *Request, status int, fe *FormErrors, edit func(*recordData)) error {
	d, err := readRecord(rq, rq.R.PathValue("patient"))
	if err != nil {
		return err
	}
	d.Admin = rq.Session.IsAdmin()
	if edit != nil {
		edit(d)
	}
	v := View{Title: d.Patient.GetGivenName() + " " + d.Patient.GetFamilyName(), Nav: "patients", Data: d, Form: fe}
	if fe == nil {
		v.Flash = recordNotices[rq.R.URL.Query().Get("done")]
	}
	return rq.Render(status, "record.html", v)
}

// recordDone answers a change: 303 back to the record on success, the
// record with the refusal when the API refused the form, the error page
// otherwise (a patient that is not the pharmacy's is not_found, as one
// that does not exist).
func recordDone(rq *Request, err error, done, anchor string) error {
	if err == nil {
		return rq.Redirect(patientPath(rq.R.PathValue("patient")) + "?done=" + done + "#" + anchor)
	}
	fe, status, ok := refused(err)
	if !ok {
		return err
	}
	return showRecord(rq, status, fe, func(d *recordData) { d.OpenAdd = anchor == "add-medicine" })
}

// staleRow shows the current version of the row a stale edit was refused
// for, with what the pharmacist had entered, in a form that starts from
// the current version.
func staleRow(rq *Request, err error, what, rowID string, fields []string) error {
	fe, status, ok := refused(err)
	if !ok {
		return err
	}
	return showRecord(rq, status, fe, func(d *recordData) {
		c := &recordConflict{What: what}
		for _, f := range fields {
			if v := rq.form(f); v != "" {
				c.Tried = append(c.Tried, triedField{Label: fieldLabel(f), Value: v})
			}
		}
		for i := range d.Current {
			if d.Current[i].GetId() == rowID {
				d.Current[i].Conflict = true
				c.Medication = d.Current[i].Medication
			}
		}
		for _, m := range d.Stopped {
			if m.GetId() == rowID {
				c.Medication = m.Medication
			}
		}
		for _, it := range d.Items {
			if it.GetId() == rowID {
				c.Item = it
			}
		}
		d.Conflict = c
	})
}

// isStale reports whether err is the API's answer to a stale version.
func isStale(err error) bool { return connect.CodeOf(err) == connect.CodeAborted }

// formVersion is the row version a form was rendered with (0 when absent
// or not a number, which the API refuses as invalid).
func (rq *Request) formVersion() int64 {
	v, _ := strconv.ParseInt(rq.form("version"), 10, 64)
	return v
}

var medicineFormFields = []string{"name", "strength", "rxcui", "how_i_use_it", "why_i_use_it", "prescriber", "prescriber_phone", "started_on"}

// medicationFields reads a medicine form.
func (rq *Request) medicationFields() *mtmv1.MedicationFields {
	return &mtmv1.MedicationFields{
		Name: rq.form("name"), Strength: rq.form("strength"), Rxcui: rq.form("rxcui"),
		HowIUseIt: rq.form("how_i_use_it"), WhyIUseIt: rq.form("why_i_use_it"),
		Prescriber: rq.form("prescriber"), PrescriberPhone: rq.form("prescriber_phone"), StartedOn: rq.form("started_on"),
	}
}

func addMedicine(rq *Request) error {
	_, err := rq.API.Care.AddMedication(rq.Context(), connect.NewRequest(&mtmv1.AddMedicationRequest{
		PatientId: rq.R.PathValue("patient"), Medication: rq.medicationFields()}))
	return recordDone(rq, err, "medicine-added", "add-medicine")
}

func changeMedicine(rq *Request) error {
	id := rq.R.PathValue("row")
	_, err := rq.API.Care.ChangeMedication(rq.Context(), connect.NewRequest(&mtmv1.ChangeMedicationRequest{
		PatientId: rq.R.PathValue("patient"), MedicationId: id, ExpectedVersion: rq.formVersion(),
		Medication: rq.medicationFields(), Reason: rq.form("reason")}))
	if isStale(err) {
		return staleRow(rq, err, "medicine", id, append(medicineFormFields[:len(medicineFormFields):len(medicineFormFields)], "reason"))
	}
	return recordDone(rq, err, "medicine-changed", "med-"+id)
}

func stopMedicine(rq *Request) error {
	id := rq.R.PathValue("row")
	_, err := rq.API.Care.StopMedication(rq.Context(), connect.NewRequest(&mtmv1.StopMedicationRequest{
		PatientId: rq.R.PathValue("patient"), MedicationId: id, ExpectedVersion: rq.formVersion(),
		StoppedOn: rq.form("stopped_on"), WhyStopped: rq.form("why_stopped")}))
	if isStale(err) {
		return staleRow(rq, err, "medicine", id, []string{"stopped_on", "why_stopped"})
	}
	return recordDone(rq, err, "medicine-stopped", "med-"+id)
}

func recordFill(rq *Request) error {
	id := rq.R.PathValue("row")
	days, err := strconv.Atoi(rq.form("days_supply"))
	if err != nil {
		days = 0 // refused by the API, naming the field
	}
	_, err = rq.API.Care.RecordFill(rq.Context(), connect.NewRequest(&mtmv1.RecordFillRequest{
		PatientId: rq.R.PathValue("patient"), MedicationId: id, FilledOn: rq.form("filled_on"), DaysSupply: int32(min(max(days, 0), 100000))}))
	return recordDone(rq, err, "fill-recorded", "med-"+id)
}

func addAllergy(rq *Request) error {
	_, err := rq.API.Care.AddAllergy(rq.Context(), connect.NewRequest(&mtmv1.AddAllergyRequest{
		PatientId: rq.R.PathValue("patient"), Kind: mtmv1.AllergyKind(mtmv1.AllergyKind_value[rq.form("kind")]),
		Substance: rq.form("substance"), Reaction: rq.form("reaction")}))
	return recordDone(rq, err, "allergy-added", "allergy-h")
}

func removeAllergy(rq *Request) error {
	_, err := rq.API.Care.RemoveAllergy(rq.Context(), connect.NewRequest(&mtmv1.RemoveAllergyRequest{
		PatientId: rq.R.PathValue("patient"), AllergyId: rq.R.PathValue("row")}))
	return recordDone(rq, err, "allergy-removed", "allergy-h")
}

func setOther(rq *Request) error {
	_, err := rq.API.Care.SetOtherInformation(rq.Context(), connect.NewRequest(&mtmv1.SetOtherInformationRequest{
		PatientId: rq.R.PathValue("patient"), OtherInformation: rq.form("other_information")}))
	return recordDone(rq, err, "other-saved", "other-h")
}

func addItem(rq *Request) error {
	_, err := rq.API.Care.AddActionItem(rq.Context(), connect.NewRequest(&mtmv1.AddActionItemRequest{
		PatientId: rq.R.PathValue("patient"), WhatWeTalkedAbout: rq.form("what_we_talked_about"), WhatINeedToDo: rq.form("what_i_need_to_do")}))
	return recordDone(rq, err, "item-added", "map-h")
}

func changeItem(rq *Request) error {
	id := rq.R.PathValue("row")
	_, err := rq.API.Care.ChangeActionItem(rq.Context(), connect.NewRequest(&mtmv1.ChangeActionItemRequest{
		PatientId: rq.R.PathValue("patient"), ActionItemId: id, ExpectedVersion: rq.formVersion(),
		WhatWeTalkedAbout: rq.form("what_we_talked_about"), WhatINeedToDo: rq.form("what_i_need_to_do")}))
	if isStale(err) {
		return staleRow(rq, err, "action item", id, []string{"what_we_talked_about", "what_i_need_to_do"})
	}
	return recordDone(rq, err, "item-changed", "item-"+id)
}

func setPlanNotes(rq *Request) error {
	_, err := rq.API.Care.SetActionPlanNotes(rq.Context(), connect.NewRequest(&mtmv1.SetActionPlanNotesRequest{
		PatientId: rq.R.PathValue("patient"), FollowUpPlan: rq.form("follow_up_plan"), Questions: rq.form("questions")}))
	return recordDone(rq, err, "notes-saved", "map-h")
}

func setContacts(rq *Request) error {
	_, err := rq.API.Care.SetPatientContacts(rq.Context(), connect.NewRequest(&mtmv1.SetPatientContactsRequest{
		PatientId: rq.R.PathValue("patient"), Address: rq.form("address"), Phone: rq.form("phone"),
		EmergencyContact: &mtmv1.Contact{Name: rq.form("emergency_name"), Relationship: rq.form("emergency_relationship"), Phone: rq.form("emergency_phone")},
		PrimaryCare:      &mtmv1.Contact{Name: rq.form("primary_name"), Phone: rq.form("primary_phone")},
	}))
	return recordDone(rq, err, "contacts-saved", "contacts-h")
}

// resolveReport accepts a self-reported medicine as reported, or declines
// it with the reason the patient will see.
func resolveReport(rq *Request) error {
	req := &mtmv1.ResolveSelfReportedMedicationRequest{PatientId: rq.R.PathValue("patient"), ReportId: rq.R.PathValue("row")}
	done := "report-accepted"
	switch rq.form("decision") {
	case "accept":
		req.Decision = mtmv1.SelfReportDecision_SELF_REPORT_DECISION_ACCEPT
	case "decline":
		req.Decision, req.DeclineReason, done = mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, rq.form("decline_reason"), "report-declined"
	}
	_, err := rq.API.Care.ResolveSelfReportedMedication(rq.Context(), connect.NewRequest(req))
	return recordDone(rq, err, done, "pml-h")
}

package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// The patient record: profile, PML (medicines, allergies, other
// information, fills), MAP (items, notes), contacts, self-reported
// medicines to accept or decline, and adherence. Every change is one
// CareService call made with the signed-in pharmacist's principal; a
// change of a PML row or MAP item carries the version the page showed, and
// a stale one is answered with the current row (recordConflict).

// recordPage is what record.html shows.
type recordPage struct {
	pageBase
	Patient     *mtmv1.Patient
	PatientPath string
	Current     []medicationRow
	Stopped     []medicationRow
	Allergies   []*mtmv1.Allergy
	Other       string
	Items       []*mtmv1.ActionItem
	Plan        *mtmv1.MedicationActionPlan
	SelfReports []*mtmv1.SelfReportedMedication
	Today       string
	// Notice is a one-line result of the last action ("Medicine added").
	Notice string
	// Problem is an error to show above the forms (invalid field, …).
	Problem string
	// Conflict is set when a change was refused as stale.
	Conflict *recordConflict
	// OpenAdd opens the add-medicine form (after a refused add).
	OpenAdd bool
}

// medicationRow is a PML row with its fills and adherence.
type medicationRow struct {
	*mtmv1.Medication
	Fills    []*mtmv1.Fill
	PDC      string // "87%", empty when not measured
	Below    bool
	Conflict bool // this row is the one a stale edit was refused for
}

// recordConflict is a stale edit: what the pharmacist tried and the row as
// it is now.
type recordConflict struct {
	What       string // "medicine", "action item"
	Medication *mtmv1.Medication
	Item       *mtmv1.ActionItem
	// Tried are the values the refused form carried, to copy from.
	Tried map[string]string
}

// recordFor reads the record page's data through CareService.
func recordFor(ctx context.Context, care mtmv1connect.CareServiceClient, patientID string) (*recordPage, error) {
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
	pml := rec.Msg.GetMedicationList()
	pdc := map[string]*mtmv1.MedicationAdherence{}
	for _, a := range adh.Msg.GetMedications() {
		pdc[a.GetMedicationId()] = a
	}
	fills := map[string][]*mtmv1.Fill{}
	for _, f := range pml.GetFills() {
		fills[f.GetMedicationId()] = append(fills[f.GetMedicationId()], f)
	}
	pg := &recordPage{
		Patient:     rec.Msg.GetPatient(),
		PatientPath: patientPath(patientID),
		Allergies:   pml.GetAllergies(),
		Other:       pml.GetOtherInformation(),
		Items:       rec.Msg.GetActionPlan().GetItems(),
		Plan:        rec.Msg.GetActionPlan(),
		SelfReports: self.Msg.GetReports(),
	}
	for _, m := range pml.GetMedications() {
		row := medicationRow{Medication: m, Fills: fills[m.GetId()]}
		if a, ok := pdc[m.GetId()]; ok {
			row.PDC = fmt.Sprintf("%.0f%%", a.GetProportionOfDaysCovered()*100)
			row.Below = a.GetBelowThreshold()
		}
		if m.GetStoppedOn() == "" {
			pg.Current = append(pg.Current, row)
		} else {
			pg.Stopped = append(pg.Stopped, row)
		}
	}
	return pg, nil
}

// medicationFieldsFrom reads a medicine form.
func medicationFieldsFrom(r *http.Request) *mtmv1.MedicationFields {
	return &mtmv1.MedicationFields{
		Name:            formText(r, "name"),
		Strength:        formText(r, "strength"),
		Rxcui:           formText(r, "rxcui"),
		HowIUseIt:       formText(r, "how_i_use_it"),
		WhyIUseIt:       formText(r, "why_i_use_it"),
		Prescriber:      formText(r, "prescriber"),
		PrescriberPhone: formText(r, "prescriber_phone"),
		StartedOn:       formText(r, "started_on"),
	}
}

// formText is a form value with surrounding white space removed.
func formText(r *http.Request, name string) string {
	return strings.TrimSpace(r.PostFormValue(name))
}

// formVersion is the row version a form was rendered with (0 when absent
// or not a number, which the API refuses as invalid).
func formVersion(r *http.Request) int64 {
	v, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	return v
}

// formValues keeps a refused form's values to show beside the current row.
func formValues(r *http.Request, names ...string) map[string]string {
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = formText(r, n)
	}
	return out
}

// isStale reports whether err is the API's answer to a stale version.
func isStale(err error) bool {
	return connect.CodeOf(err) == connect.CodeAborted
}

// problemText is what a refused change says to the pharmacist: the API's
// message for a bad field or a refused step, a generic sentence for the
// rest (whose detail went to the log).
func problemText(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		switch ce.Code() {
		case connect.CodeInvalidArgument, connect.CodeFailedPrecondition:
			return "Not saved: " + ce.Message()
		case connect.CodeAborted:
			return "Not saved: someone else changed this record since you opened it."
		case connect.CodeNotFound:
			return "Not saved: that entry no longer exists."
		case connect.CodePermissionDenied:
			return "Not saved: your account may not do this."
		case connect.CodeResourceExhausted:
			return "Not saved: too many requests; try again in a moment."
		}
	}
	return "Not saved: something went wrong on our side. Try again; if it persists, tell your administrator."
}

// enumNames are the labels of the contract's enums shown in forms.
var allergyKinds = []option{
	{Value: "ALLERGY_KIND_ALLERGY", Label: "Allergy"},
	{Value: "ALLERGY_KIND_SIDE_EFFECT", Label: "Side effect"},
}

// option is one choice of a select or radio group.
type option struct {
	Value, Label string
}

// recordNotices are the one-line results a change redirects with
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

// serveRecord shows a patient's record.
func (pg *pages) serveRecord(w http.ResponseWriter, r *http.Request) {
	pg.showRecord(w, r, http.StatusOK, func(d *recordPage) {
		d.Notice = recordNotices[r.URL.Query().Get("done")]
	})
}

// showRecord reads the record and renders it after edit has adjusted it.
func (pg *pages) showRecord(w http.ResponseWriter, r *http.Request, status int, edit func(*recordPage)) {
	data, err := recordFor(r.Context(), pg.care, r.PathValue("patient"))
	if err != nil {
		pg.fail(w, r, err)
		return
	}
	data.pageBase = pg.base(r, data.Patient.GetGivenName()+" "+data.Patient.GetFamilyName())
	data.Today = pg.today(data.Patient.GetTimeZone())
	if edit != nil {
		edit(data)
	}
	pg.render(w, r, status, "record", data)
}

// recordDone answers a change: back to the record (303) on success; the
// record with the problem on a refused change; the conflict page for a
// stale one.
func (pg *pages) recordDone(w http.ResponseWriter, r *http.Request, err error, done, anchor string) {
	if err == nil {
		http.Redirect(w, r, patientPath(r.PathValue("patient"))+"?done="+done+"#"+anchor, http.StatusSeeOther)
		return
	}
	// A patient that is gone or not of this pharmacy fails the re-read
	// the same way, so the answer tells nothing more than the API's.
	pg.showRecord(w, r, statusOf(err), func(d *recordPage) {
		d.Problem = problemText(err)
		d.OpenAdd = anchor == "add-medicine"
	})
}

// staleRow shows the current version of the row a stale edit was refused
// for, with what the pharmacist had entered.
func (pg *pages) staleRow(w http.ResponseWriter, r *http.Request, what, rowID string, tried map[string]string) {
	pg.showRecord(w, r, http.StatusConflict, func(d *recordPage) {
		c := &recordConflict{What: what, Tried: tried}
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

var medicineFormFields = []string{"name", "strength", "rxcui", "how_i_use_it", "why_i_use_it", "prescriber", "prescriber_phone", "started_on"}

func (pg *pages) addMedicine(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.AddMedication(r.Context(), connect.NewRequest(&mtmv1.AddMedicationRequest{
		PatientId: r.PathValue("patient"), Medication: medicationFieldsFrom(r)}))
	pg.recordDone(w, r, err, "medicine-added", "add-medicine")
}

func (pg *pages) changeMedicine(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("row")
	_, err := pg.care.ChangeMedication(r.Context(), connect.NewRequest(&mtmv1.ChangeMedicationRequest{
		PatientId: r.PathValue("patient"), MedicationId: id, ExpectedVersion: formVersion(r),
		Medication: medicationFieldsFrom(r), Reason: formText(r, "reason")}))
	if isStale(err) {
		pg.staleRow(w, r, "medicine", id, formValues(r, append(medicineFormFields, "reason")...))
		return
	}
	pg.recordDone(w, r, err, "medicine-changed", "med-"+id)
}

func (pg *pages) stopMedicine(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("row")
	_, err := pg.care.StopMedication(r.Context(), connect.NewRequest(&mtmv1.StopMedicationRequest{
		PatientId: r.PathValue("patient"), MedicationId: id, ExpectedVersion: formVersion(r),
		StoppedOn: formText(r, "stopped_on"), WhyStopped: formText(r, "why_stopped")}))
	if isStale(err) {
		pg.staleRow(w, r, "medicine", id, formValues(r, "stopped_on", "why_stopped"))
		return
	}
	pg.recordDone(w, r, err, "medicine-stopped", "med-"+id)
}

func (pg *pages) recordFill(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("row")
	days, _ := strconv.Atoi(formText(r, "days_supply"))
	_, err := pg.care.RecordFill(r.Context(), connect.NewRequest(&mtmv1.RecordFillRequest{
		PatientId: r.PathValue("patient"), MedicationId: id, FilledOn: formText(r, "filled_on"), DaysSupply: int32(min(max(days, -1), 10000))}))
	pg.recordDone(w, r, err, "fill-recorded", "med-"+id)
}

func (pg *pages) addAllergy(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.AddAllergy(r.Context(), connect.NewRequest(&mtmv1.AddAllergyRequest{
		PatientId: r.PathValue("patient"), Kind: mtmv1.AllergyKind(mtmv1.AllergyKind_value[formText(r, "kind")]),
		Substance: formText(r, "substance"), Reaction: formText(r, "reaction")}))
	pg.recordDone(w, r, err, "allergy-added", "allergy-h")
}

func (pg *pages) removeAllergy(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.RemoveAllergy(r.Context(), connect.NewRequest(&mtmv1.RemoveAllergyRequest{
		PatientId: r.PathValue("patient"), AllergyId: r.PathValue("row")}))
	pg.recordDone(w, r, err, "allergy-removed", "allergy-h")
}

func (pg *pages) setOther(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.SetOtherInformation(r.Context(), connect.NewRequest(&mtmv1.SetOtherInformationRequest{
		PatientId: r.PathValue("patient"), OtherInformation: formText(r, "other_information")}))
	pg.recordDone(w, r, err, "other-saved", "other-h")
}

func (pg *pages) addItem(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.AddActionItem(r.Context(), connect.NewRequest(&mtmv1.AddActionItemRequest{
		PatientId: r.PathValue("patient"), WhatWeTalkedAbout: formText(r, "what_we_talked_about"), WhatINeedToDo: formText(r, "what_i_need_to_do")}))
	pg.recordDone(w, r, err, "item-added", "map-h")
}

func (pg *pages) changeItem(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("row")
	_, err := pg.care.ChangeActionItem(r.Context(), connect.NewRequest(&mtmv1.ChangeActionItemRequest{
		PatientId: r.PathValue("patient"), ActionItemId: id, ExpectedVersion: formVersion(r),
		WhatWeTalkedAbout: formText(r, "what_we_talked_about"), WhatINeedToDo: formText(r, "what_i_need_to_do")}))
	if isStale(err) {
		pg.staleRow(w, r, "action item", id, formValues(r, "what_we_talked_about", "what_i_need_to_do"))
		return
	}
	pg.recordDone(w, r, err, "item-changed", "item-"+id)
}

func (pg *pages) setPlanNotes(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.SetActionPlanNotes(r.Context(), connect.NewRequest(&mtmv1.SetActionPlanNotesRequest{
		PatientId: r.PathValue("patient"), FollowUpPlan: formText(r, "follow_up_plan"), Questions: formText(r, "questions")}))
	pg.recordDone(w, r, err, "notes-saved", "map-h")
}

func (pg *pages) setContacts(w http.ResponseWriter, r *http.Request) {
	_, err := pg.care.SetPatientContacts(r.Context(), connect.NewRequest(&mtmv1.SetPatientContactsRequest{
		PatientId: r.PathValue("patient"), Address: formText(r, "address"), Phone: formText(r, "phone"),
		EmergencyContact: &mtmv1.Contact{Name: formText(r, "emergency_name"), Relationship: formText(r, "emergency_relationship"), Phone: formText(r, "emergency_phone")},
		PrimaryCare:      &mtmv1.Contact{Name: formText(r, "primary_name"), Phone: formText(r, "primary_phone")},
	}))
	pg.recordDone(w, r, err, "contacts-saved", "contacts-h")
}

// resolveReport accepts a self-reported medicine as reported, or declines
// it with the reason the patient will see.
func (pg *pages) resolveReport(w http.ResponseWriter, r *http.Request) {
	req := &mtmv1.ResolveSelfReportedMedicationRequest{PatientId: r.PathValue("patient"), ReportId: r.PathValue("row")}
	done := "report-accepted"
	switch r.PostFormValue("decision") {
	case "accept":
		req.Decision = mtmv1.SelfReportDecision_SELF_REPORT_DECISION_ACCEPT
	case "decline":
		req.Decision, req.DeclineReason, done = mtmv1.SelfReportDecision_SELF_REPORT_DECISION_DECLINE, formText(r, "decline_reason"), "report-declined"
	}
	_, err := pg.care.ResolveSelfReportedMedication(r.Context(), connect.NewRequest(req))
	pg.recordDone(w, r, err, done, "pml-h")
}

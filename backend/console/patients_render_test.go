package console

import (
	"bytes"
	"strings"
	"testing"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Every page of this group renders with realistic data, and a stale edit
// shows the current row beside what the pharmacist entered.
func TestPatientPagesRender(t *testing.T) {
	pages, err := parseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	pt := &mtmv1.Patient{Id: "pt_1", GivenName: "Ana", FamilyName: "Díaz", DateOfBirth: "1950-03-04", TimeZone: "America/Chicago"}
	med := &mtmv1.Medication{Id: "md_1", Name: "Lisinopril", Strength: "10 mg", HowIUseIt: "1 tablet daily", Version: 3}
	item := &mtmv1.ActionItem{Id: "ai_1", WhatWeTalkedAbout: "Blood pressure", WhatINeedToDo: "Check it weekly", Version: 2}
	head := patientHead{Patient: pt, Path: patientPath("pt_1"), Current: "record"}
	cases := map[string]struct {
		tmpl string
		data any
		want []string
	}{
		"patients": {"patients.html", patientsData{Searched: true, Results: []*mtmv1.Patient{pt}, Enroll: map[string]string{}, TimeZones: timeZones, Languages: languages}, []string{"Díaz, Ana", "/console/patients/pt_1"}},
		"code":     {"patients_code.html", codeData{Patient: pt, Code: "ABCD-EFGH", ExpiresAt: "12/03/2026"}, []string{"ABCD-EFGH", "data-print"}},
		"record": {"record.html", &recordData{Head: head, Patient: pt, PatientPath: head.Path, Current: []pmlRow{{Medication: med, Conflict: true}},
			Items: []*mtmv1.ActionItem{item}, Conflict: &recordConflict{What: "medicine", Medication: med, Tried: []triedField{{"How I use it", "2 tablets daily"}}}},
			[]string{"Someone else changed this medicine", "1 tablet daily", "2 tablets daily", `name="version" value="3"`}},
		"review": {"review.html", reviewData{Head: head, Patient: pt, PatientPath: head.Path, Reviews: []*mtmv1.Review{{Id: "rv_1", Kind: mtmv1.ReviewKind_REVIEW_KIND_CMR,
			ReviewedOn: "2026-11-20", SummaryDueBy: "2026-12-04", Interventions: []*mtmv1.Intervention{{Kind: mtmv1.InterventionKind_INTERVENTION_KIND_INTERVENTION, Description: "Take in the morning"}}}}},
			[]string{"Comprehensive Medication Review on 11/20/2026", "Take in the morning", "data-download"}},
		"worklists": {"worklists.html", worklistsData{CmrDue: []*mtmv1.CmrDue{{Patient: pt, NextCmrDueOn: "2026-12-01"}}, BelowPDC: []belowPDC{{Patient: pt, Count: 1, Lowest: .61}}},
			[]string{"12/01/2026", "61%"}},
		"access": {"access.html", accessData{Head: head, Events: []*mtmv1.AccessEvent{{ActorName: "Pat Pharmacist", Procedure: "/mtm.v1.CareService/GetPatientRecord", Outcome: mtmv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED}}},
			[]string{"Get patient record (CareService)", "Pat Pharmacist"}},
		"admin": {"admin.html", adminData{Pharmacy: &mtmv1.Pharmacy{Name: "Main St Pharmacy"}, IsAdmin: true}, []string{"Main St Pharmacy", "Create a pharmacist account"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			v := View{Title: name, Data: tc.data, CSRF: "tok", Form: &FormErrors{Fields: map[string]string{"medication.how_i_use_it": "must not be empty"}}}
			if err := pages[tc.tmpl].ExecuteTemplate(&buf, "layout", v); err != nil {
				t.Fatal(err)
			}
			for _, w := range append(tc.want, "How I use it") {
				if name != "record" && w == "How I use it" && tc.tmpl != "patients.html" {
					continue
				}
				if !strings.Contains(buf.String(), w) {
					t.Errorf("page lacks %q", w)
				}
			}
		})
	}
}

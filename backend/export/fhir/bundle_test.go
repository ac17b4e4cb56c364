package fhir_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mtmapp/mtm/backend/export/fhir"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// r4Schema compiles the official FHIR R4 JSON schema from testdata.
func r4Schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		f, err := os.Open("testdata/fhir.schema.json")
		if err != nil {
			schemaErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("http://hl7.org/fhir/json-schema/4.0", doc); err != nil {
			schemaErr = err
			return
		}
		schema, schemaErr = c.Compile("http://hl7.org/fhir/json-schema/4.0")
	})
	if schemaErr != nil {
		t.Fatalf("compile FHIR R4 schema: %v", schemaErr)
	}
	return schema
}

// validate fails the test unless doc is valid FHIR R4 JSON.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if err := r4Schema(t).Validate(inst); err != nil {
		t.Fatalf("export is not valid FHIR R4:\n%v", err)
	}
}

func date(s string) store.Date {
	d, err := store.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

var now = time.Date(2026, 3, 20, 14, 0, 0, 0, time.UTC)

// record is a patient with one row of every kind the export maps.
func record() store.Patient {
	return store.Patient{
		ID: "pt_olive00001", PharmacyID: "ph_main", GivenName: "Olive", FamilyName: "Oyl", DateOfBirth: date("1950-06-01"),
		Medications: []store.Medication{
			{ID: "md_metformin", Name: "Metformin", Strength: "500 mg", RxCUI: "861007", HowIUseIt: "1 tablet twice a day with meals",
				WhyIUseIt: "Diabetes", Prescriber: "Dr. Rivera", StartedOn: date("2024-01-15"), UpdatedAt: now.Add(-time.Hour), Version: 1},
			{ID: "md_simva", Name: "Simvastatin", Strength: "20 mg", HowIUseIt: "1 tablet at bedtime", WhyIUseIt: "Cholesterol",
				StartedOn: date("2023-05-01"), StoppedOn: date("2026-02-01"), WhyStopped: "Muscle aches", Version: 2},
		},
		Allergies: []store.Allergy{
			{ID: "al_pen", Kind: store.KindAllergy, Substance: "Penicillin", Reaction: "Hives", RecordedAt: now.Add(-48 * time.Hour)},
			{ID: "al_codeine", Kind: store.KindSideEffect, Substance: "Codeine", Reaction: ""},
		},
		ActionItems: []store.ActionItem{
			{ID: "ai_walk", WhatWeTalkedAbout: "Blood sugar after dinner is high", WhatINeedToDo: "Walk 20 minutes after dinner",
				Progress: []store.Progress{{WhatIDid: "Walked 4 evenings", DoneOn: date("2026-03-10"), RecordedAt: now.Add(-24 * time.Hour)}}, CreatedAt: now.Add(-72 * time.Hour)},
			{ID: "ai_log", WhatWeTalkedAbout: "Readings <b>vary</b>", WhatINeedToDo: "Keep a glucose log & bring it"},
		},
		FollowUpPlan: "Call in two weeks",
		Questions:    "Can I take ibuprofen?",
		SelfReports: []store.SelfReport{
			{ID: "sr_fishoil", Kind: "supplement", Name: "Fish oil", HowIUseIt: "1 capsule daily", StartedOn: date("2026-01-01"), Status: "pending", ReportedAt: now},
			{ID: "sr_wort", Kind: "herbal", Name: "St. John's wort", Status: "declined", DeclineReason: "Interacts with sertraline"},
		},
	}
}

// resources decodes the Bundle's entries by resource type.
func resources(t *testing.T, doc []byte) map[string][]map[string]any {
	t.Helper()
	var b struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			FullURL  string         `json:"fullUrl"`
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(doc, &b); err != nil {
		t.Fatal(err)
	}
	if b.ResourceType != "Bundle" || b.Type != "collection" {
		t.Fatalf("got %s of type %s, want a collection Bundle", b.ResourceType, b.Type)
	}
	out := map[string][]map[string]any{}
	for _, e := range b.Entry {
		if !strings.HasPrefix(e.FullURL, "urn:uuid:") {
			t.Errorf("entry fullUrl %q is not a urn:uuid", e.FullURL)
		}
		kind, _ := e.Resource["resourceType"].(string)
		out[kind] = append(out[kind], e.Resource)
	}
	return out
}

func TestBundleValidatesAgainstR4Schema(t *testing.T) {
	tests := []struct {
		name string
		in   fhir.Input
	}{
		{"every kind of row", fhir.Input{Patient: record(), PharmacyName: "Main Street Pharmacy", Now: now,
			Messages: []fhir.Message{
				{ID: "ms_1", ThreadID: "th_1", Subject: "Ibuprofen?", FromPatientSide: true, Body: "Can I take ibuprofen?", SentAt: now},
				{ID: "ms_2", ThreadID: "th_1", Subject: "Ibuprofen?", Body: "Better use acetaminophen.", SentAt: now.Add(time.Hour)},
			}}},
		{"the conformance suite's sample patient", fhir.Input{Patient: storetest.SamplePatient("pt_sample", "ph_main", 20), PharmacyName: "Main", Now: now}},
		{"a newly enrolled patient with an empty record", fhir.Input{Patient: store.Patient{ID: "pt_new", PharmacyID: "ph_main", GivenName: "New", FamilyName: "Patient"}, Now: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := fhir.Bundle(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			validate(t, doc)
			if bytes.Contains(doc, []byte("{}")) || bytes.Contains(doc, []byte("[]")) || bytes.Contains(doc, []byte(`""`)) {
				t.Errorf("export has empty elements, which FHIR forbids:\n%s", doc)
			}
		})
	}
}

func TestBundleContent(t *testing.T) {
	doc, err := fhir.Bundle(fhir.Input{Patient: record(), PharmacyName: "Main Street Pharmacy", Now: now,
		Messages: []fhir.Message{{ID: "ms_1", Subject: "Ibuprofen?", FromPatientSide: true, Body: "Can I take ibuprofen?", SentAt: now}}})
	if err != nil {
		t.Fatal(err)
	}
	rs := resources(t, doc)
	for kind, want := range map[string]int{"Patient": 1, "Organization": 1, "MedicationStatement": 3, "AllergyIntolerance": 2, "CarePlan": 1, "Goal": 2, "Communication": 1} {
		if got := len(rs[kind]); got != want {
			t.Errorf("%d %s resources, want %d", got, kind, want)
		}
	}
	byID := map[string]map[string]any{}
	// The R4 JSON schema does not enumerate MedicationStatement.status (a
	// required binding), so the value set is checked here.
	statuses := map[string]bool{"active": true, "completed": true, "entered-in-error": true, "intended": true, "stopped": true, "on-hold": true, "unknown": true, "not-taken": true}
	for _, r := range rs["MedicationStatement"] {
		byID[r["id"].(string)] = r
		if s, _ := r["status"].(string); !statuses[s] {
			t.Errorf("MedicationStatement %v has status %q, outside the R4 value set", r["id"], s)
		}
	}

	t.Run("a current PML row", func(t *testing.T) {
		m := byID["md.metformin"]
		wantJSON(t, m, "status", `"active"`)
		wantJSON(t, m, "medicationCodeableConcept", `{"coding":[{"code":"861007","display":"Metformin 500 mg","system":"http://www.nlm.nih.gov/research/umls/rxnorm"}],"text":"Metformin 500 mg"}`)
		wantJSON(t, m, "reasonCode", `[{"text":"Diabetes"}]`)
		wantJSON(t, m, "dosage", `[{"text":"1 tablet twice a day with meals"}]`)
		wantJSON(t, m, "effectivePeriod", `{"start":"2024-01-15"}`)
		if _, ok := m["statusReason"]; ok {
			t.Error("a current medicine has a statusReason")
		}
	})
	t.Run("a stopped PML row keeps its history with the reason", func(t *testing.T) {
		m := byID["md.simva"]
		wantJSON(t, m, "status", `"stopped"`)
		wantJSON(t, m, "statusReason", `[{"text":"Muscle aches"}]`)
		wantJSON(t, m, "effectivePeriod", `{"end":"2026-02-01","start":"2023-05-01"}`)
	})
	t.Run("a pending self-report is patient-specified, not pharmacist-verified", func(t *testing.T) {
		m := byID["sr.fishoil"]
		if m == nil {
			t.Fatal("pending self-report missing")
		}
		wantJSON(t, m["category"].(map[string]any), "coding", `[{"code":"patientspecified","display":"Patient Specified","system":"http://terminology.hl7.org/CodeSystem/medication-statement-category"}]`)
		src := m["informationSource"].(map[string]any)["reference"]
		if subject := m["subject"].(map[string]any)["reference"]; src != subject {
			t.Errorf("informationSource = %v, want the Patient %v", src, subject)
		}
		for id, r := range byID {
			if strings.HasPrefix(id, "md.") && r["category"] != nil {
				t.Errorf("verified row %s carries a category", id)
			}
			if strings.HasPrefix(id, "md.") && r["informationSource"].(map[string]any)["reference"] == r["subject"].(map[string]any)["reference"] {
				t.Errorf("verified row %s names the patient as its source", id)
			}
		}
		if _, ok := byID["sr.wort"]; ok {
			t.Error("a declined self-report was exported")
		}
	})
	t.Run("allergies and side effects", func(t *testing.T) {
		got := map[string]string{}
		for _, a := range rs["AllergyIntolerance"] {
			got[a["code"].(map[string]any)["text"].(string)] = a["type"].(string)
		}
		if got["Penicillin"] != "allergy" || got["Codeine"] != "intolerance" {
			t.Errorf("types = %v, want Penicillin allergy and Codeine intolerance", got)
		}
	})
	t.Run("the action plan", func(t *testing.T) {
		cp := rs["CarePlan"][0]
		wantJSON(t, cp, "title", `"Medication Action Plan"`)
		acts := cp["activity"].([]any)
		if len(acts) != 2 {
			t.Fatalf("%d activities, want 2", len(acts))
		}
		first := acts[0].(map[string]any)
		wantJSON(t, first["detail"].(map[string]any), "description", `"Walk 20 minutes after dinner"`)
		wantJSON(t, first["detail"].(map[string]any), "status", `"in-progress"`)
		wantJSON(t, first, "progress", `[{"text":"What I did: Walked 4 evenings (on 2026-03-10)","time":"2026-03-19T14:00:00Z"}]`)
		wantJSON(t, acts[1].(map[string]any)["detail"].(map[string]any), "description", `"Keep a glucose log & bring it"`)
		wantJSON(t, cp, "note", `[{"text":"My follow-up plan: Call in two weeks"},{"text":"Questions I want to ask: Can I take ibuprofen?"}]`)
	})
}

// wantJSON compares one field of a decoded resource with its expected JSON.
func wantJSON(t *testing.T, res map[string]any, field, want string) {
	t.Helper()
	got, err := json.Marshal(res[field])
	if err != nil {
		t.Fatal(err)
	}
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	wantCanon, _ := json.Marshal(w)
	if string(got) != string(wantCanon) {
		t.Errorf("%s = %s, want %s", field, got, wantCanon)
	}
}

// TestSchemaRejectsInvalidFHIR shows the schema check has teeth: the same
// kinds of mistakes the exporter could make are refused.
func TestSchemaRejectsInvalidFHIR(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"code outside an enumerated value set", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"AllergyIntolerance","type":"side-effect","patient":{"reference":"Patient/a"}}}]}`},
		{"unknown element", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","nickname":"Ollie"}}]}`},
		{"id with an underscore", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"pt_1"}}]}`},
		{"not a date", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","birthDate":"01/06/1950"}}]}`},
	}
	s := r4Schema(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(inst); err == nil {
				t.Fatal("the R4 schema accepted an invalid resource")
			}
		})
	}
}

package fhir_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
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
		TimeZone: "America/Chicago", PreferredLanguage: "es-US",
		Phone: "555-0100", Address: "12 Elm St\n\nSpringfield, IL 62701",
		EmergencyContact: store.Contact{Name: "Olivia Oyl", Relationship: "daughter", Phone: "555-0101"},
		PrimaryCare:      store.Contact{Name: "Dr. Rivera", Phone: "555-0102"},
		Medications: []store.Medication{
			{ID: "md_metformin", Name: "Metformin", Strength: "500 mg", RxCUI: "861007", HowIUseIt: "1 tablet twice a day with meals",
				WhyIUseIt: "Diabetes", Prescriber: "Dr. Rivera", StartedOn: date("2024-01-15"), UpdatedAt: now.Add(-time.Hour), UpdatedBy: "ac_rph", Version: 1},
			{ID: "md_simva", Name: "Simvastatin", Strength: "20 mg", HowIUseIt: "1 tablet at bedtime", WhyIUseIt: "Cholesterol", Prescriber: "dr.  RIVERA",
				StartedOn: date("2023-05-01"), StoppedOn: date("2026-02-01"), WhyStopped: "Muscle aches", UpdatedBy: "ac_gone", Version: 2},
			{ID: "md_fish", Name: "Fish oil", Strength: "1000 mg", HowIUseIt: "1 capsule daily", StartedOn: date("2026-01-01"), Version: 1},
			{ID: "md_aspirin", Name: "Aspirin", Strength: "81 mg", HowIUseIt: "1 tablet daily", Version: 1},
		},
		Fills: []store.Fill{
			{ID: "fl_1", MedicationID: "md_metformin", FilledOn: date("2026-02-01"), DaysSupply: 30},
			{ID: "fl_2", MedicationID: "md_metformin", FilledOn: date("2026-03-01"), DaysSupply: 90},
			{ID: "fl_orphan", MedicationID: "md_deleted", FilledOn: date("2026-03-01"), DaysSupply: 30},
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
		Reviews: []store.Review{
			{ID: "rv_cmr", Kind: "cmr", DeliveryMethod: "telephone", ReviewedOn: date("2026-03-14"), PharmacistID: "ac_rph",
				Problems:           []string{"Post-dinner glucose above goal"},
				Interventions:      []store.Intervention{{Kind: "referral", Description: "Suggested a statin change", ReferredTo: "Dr. Rivera", Outcome: "Accepted"}},
				SummaryDeliveredOn: date("2026-03-16"), SummaryMethod: "mail", SummaryRecipient: "patient"},
			{ID: "rv_tmr", Kind: "tmr", DeliveryMethod: "other", ReviewedOn: date("2026-03-18"), PharmacistID: "ac_unknown"},
		},
		FollowUps: []store.FollowUp{{ID: "fu_1", ReviewID: "rv_cmr", DueAt: time.Date(2026, 4, 1, 2, 0, 0, 0, time.UTC)}},
		SelfReports: []store.SelfReport{
			{ID: "sr_fishoil", Kind: "supplement", Name: "Fish oil", Status: "accepted", MedicationID: "md_fish"},
			{ID: "sr_turmeric", Kind: "supplement", Name: "Turmeric", HowIUseIt: "1 capsule daily", StartedOn: date("2026-01-01"), Status: "pending", ReportedAt: now},
			{ID: "sr_wort", Kind: "herbal", Name: "St. John's wort", Status: "declined", DeclineReason: "Interacts with sertraline"},
		},
	}
}

func input() fhir.Input {
	return fhir.Input{Patient: record(), Now: now,
		Pharmacy:    store.Pharmacy{ID: "ph_main", Name: "Main Street Pharmacy", Phone: "555-0199", Address: "1 Main St\nSpringfield, IL 62701", NPI: "1234567893"},
		Pharmacists: []fhir.Pharmacist{{ID: "ac_rph", Name: "Rita Pharmacist, PharmD", NPI: "1245319599"}},
		Messages: []fhir.Message{
			{ID: "ms_1", ThreadID: "th_1", Subject: "Ibuprofen?", FromPatientSide: true, Body: "Can I take ibuprofen?", SentAt: now},
			{ID: "ms_2", ThreadID: "th_1", Subject: "Ibuprofen?", Body: "Better use acetaminophen.", SentAt: now.Add(time.Hour)},
		}}
}

// bundle is an exported Bundle, decoded.
type bundle struct {
	Type   string  `json:"type"`
	Entry  []entry `json:"entry"`
	byURL  map[string]map[string]any
	byType map[string][]map[string]any
}

type entry struct {
	FullURL  string         `json:"fullUrl"`
	Resource map[string]any `json:"resource"`
	Request  struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
}

// reporter receives a check's findings: t.Errorf, or a collector when a
// test shows that the check catches a mistake.
type reporter func(format string, args ...any)

// failures runs check with a collecting reporter and returns what it found.
func failures(check func(reporter)) []string {
	var out []string
	check(func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) })
	return out
}

func export(t *testing.T, in fhir.Input) (*bundle, []byte) {
	t.Helper()
	doc, err := fhir.Bundle(in)
	if err != nil {
		t.Fatal(err)
	}
	var b bundle
	if err := json.Unmarshal(doc, &b); err != nil {
		t.Fatal(err)
	}
	b.byURL, b.byType = map[string]map[string]any{}, map[string][]map[string]any{}
	for _, e := range b.Entry {
		b.byURL[e.FullURL] = e.Resource
		kind, _ := e.Resource["resourceType"].(string)
		b.byType[kind] = append(b.byType[kind], e.Resource)
	}
	return &b, doc
}

// one returns the resource of kind whose first identifier's value is id.
func (b *bundle) one(t *testing.T, kind, id string) map[string]any {
	t.Helper()
	for _, r := range b.byType[kind] {
		if identifierValue(r) == id {
			return r
		}
	}
	t.Fatalf("no %s with identifier %s", kind, id)
	return nil
}

// target returns the resource a reference points at.
func (b *bundle) target(t *testing.T, ref any) map[string]any {
	t.Helper()
	m, _ := ref.(map[string]any)
	u, _ := m["reference"].(string)
	r, ok := b.byURL[u]
	if !ok {
		t.Fatalf("reference %v resolves to no entry", ref)
	}
	return r
}

func identifierValue(r map[string]any) string {
	ids, _ := r["identifier"].([]any)
	if len(ids) == 0 {
		return ""
	}
	v, _ := ids[0].(map[string]any)["value"].(string)
	return v
}

func TestBundleValidatesAgainstR4Schema(t *testing.T) {
	tests := []struct {
		name string
		in   fhir.Input
	}{
		{"every kind of row", input()},
		{"the conformance suite's sample patient", fhir.Input{Patient: storetest.SamplePatient("pt_sample", "ph_main", 20), PharmacyName: "Main", Now: now,
			Pharmacists: []fhir.Pharmacist{{ID: "acct-pharmacist-0001", Name: "Sam Sample"}}}},
		{"a newly enrolled patient with an empty record", fhir.Input{Patient: store.Patient{ID: "pt_new", PharmacyID: "ph_main", GivenName: "New", FamilyName: "Patient"}, Now: now}},
		{"a record with no names at all", fhir.Input{Patient: store.Patient{ID: "pt_anon", PharmacyID: "ph_main"}, Now: now,
			Pharmacists: []fhir.Pharmacist{{ID: "ac_noname"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, doc := export(t, tt.in)
			validate(t, doc)
			if bytes.Contains(doc, []byte("{}")) || bytes.Contains(doc, []byte("[]")) || bytes.Contains(doc, []byte(`""`)) {
				t.Errorf("export has empty elements, which FHIR forbids:\n%s", doc)
			}
			checkReferences(t.Errorf, b)
			checkUSCore(t.Errorf, b)
		})
	}
}

// TestBundleIsAnIdempotentTransaction checks what lets a server import
// the export, and import it again without duplicates: a transaction of
// conditional updates keyed on each resource's own identifier, no client
// ids, unique and stable full URLs.
func TestBundleIsAnIdempotentTransaction(t *testing.T) {
	b, doc := export(t, input())
	if b.Type != "transaction" {
		t.Fatalf("Bundle type %q, want transaction", b.Type)
	}
	seen := map[string]bool{}
	keys := map[string]bool{}
	for _, e := range b.Entry {
		kind := e.Resource["resourceType"].(string)
		if !strings.HasPrefix(e.FullURL, "urn:uuid:") || seen[e.FullURL] {
			t.Errorf("%s fullUrl %q is not a unique urn:uuid", kind, e.FullURL)
		}
		seen[e.FullURL] = true
		if _, ok := e.Resource["id"]; ok {
			t.Errorf("%s carries a client id, which a conditional update on another server's copy would reject", kind)
		}
		ids, _ := e.Resource["identifier"].([]any)
		if len(ids) == 0 {
			t.Errorf("%s has no identifier to match on", kind)
			continue
		}
		id := ids[0].(map[string]any)
		want := kind + "?identifier=" + url.QueryEscape(id["system"].(string)+"|"+id["value"].(string))
		if e.Request.Method != "PUT" || e.Request.URL != want {
			t.Errorf("%s request = %s %s, want PUT %s", kind, e.Request.Method, e.Request.URL, want)
		}
		if keys[want] {
			t.Errorf("two entries update %s", want)
		}
		keys[want] = true
	}
	again, err := fhir.Bundle(input())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, again) {
		t.Error("two exports of the same record differ")
	}
}

// r4Targets lists, for every element through which the export references
// another resource, the resource types FHIR R4 (4.0.1) allows there, from
// the type.targetProfile of each element in the R4 StructureDefinitions
// (profiles-resources.json). Choice elements are named as they appear in
// JSON (reportedReference for reported[x]).
var r4Targets = map[string][]string{
	"Patient.managingOrganization":               {"Organization"},
	"Patient.generalPractitioner":                {"Organization", "Practitioner", "PractitionerRole"},
	"PractitionerRole.practitioner":              {"Practitioner"},
	"PractitionerRole.organization":              {"Organization"},
	"MedicationRequest.subject":                  {"Patient", "Group"},
	"MedicationRequest.requester":                {"Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device"},
	"MedicationRequest.reportedReference":        {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Organization"},
	"MedicationRequest.recorder":                 {"Practitioner", "PractitionerRole"},
	"MedicationStatement.subject":                {"Patient", "Group"},
	"MedicationStatement.informationSource":      {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Organization"},
	"MedicationDispense.subject":                 {"Patient", "Group"},
	"MedicationDispense.authorizingPrescription": {"MedicationRequest"},
	"AllergyIntolerance.patient":                 {"Patient"},
	"CarePlan.subject":                           {"Patient", "Group"},
	"CarePlan.author":                            {"Patient", "Practitioner", "PractitionerRole", "Device", "RelatedPerson", "Organization", "CareTeam"},
	"CarePlan.goal":                              {"Goal"},
	"CarePlan.activity.detail.goal":              {"Goal"},
	"Goal.subject":                               {"Patient", "Group", "Organization"},
	"Goal.expressedBy":                           {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson"},
	"Encounter.subject":                          {"Patient", "Group"},
	"Encounter.participant.individual":           {"Practitioner", "PractitionerRole", "RelatedPerson"},
	"Encounter.serviceProvider":                  {"Organization"},
	"Procedure.subject":                          {"Patient", "Group"},
	"Procedure.encounter":                        {"Encounter"},
	"Procedure.performer.actor":                  {"Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device"},
	"Procedure.performer.onBehalfOf":             {"Organization"},
	"Communication.subject":                      {"Patient", "Group"},
	"Communication.sender":                       {"Device", "Organization", "Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "HealthcareService"},
	"Communication.recipient":                    {"Device", "Organization", "Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Group", "CareTeam", "HealthcareService"},
}

// walkReferences calls fn with the element path of every Reference in v.
func walkReferences(path string, v any, fn func(path string, ref map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["reference"]; ok {
			fn(path, t)
			return
		}
		for k, child := range t {
			walkReferences(path+"."+k, child, fn)
		}
	case []any:
		for _, child := range t {
			walkReferences(path, child, fn)
		}
	}
}

// checkReferences fails unless every Reference resolves to an entry of
// the Bundle whose type R4 allows for that element.
func checkReferences(errorf reporter, b *bundle) {
	n := 0
	for _, e := range b.Entry {
		kind := e.Resource["resourceType"].(string)
		walkReferences(kind, e.Resource, func(path string, ref map[string]any) {
			n++
			allowed, known := r4Targets[path]
			if !known {
				errorf("%s: a reference where the table of R4 targets has none; add the element's targets from the R4 spec", path)
				return
			}
			u, _ := ref["reference"].(string)
			target, ok := b.byURL[u]
			if !ok {
				errorf("%s: reference %q resolves to no entry of the Bundle", path, u)
				return
			}
			got, _ := target["resourceType"].(string)
			if !contains(allowed, got) {
				errorf("%s points at a %s; R4 allows %v", path, got, allowed)
			}
		})
	}
	if n == 0 {
		errorf("no references checked")
	}
}

func TestReferencesResolveToAllowedTargets(t *testing.T) {
	b, _ := export(t, input())
	checkReferences(t.Errorf, b)

	// The check has teeth: R4 forbids an Organization as a Goal's
	// expressedBy (the mistake earlier exports made), and a reference must
	// resolve inside the Bundle.
	org := map[string]any{"resourceType": "Organization"}
	for name, goal := range map[string]map[string]any{
		"expressed by an Organization": {"resourceType": "Goal", "expressedBy": map[string]any{"reference": "urn:uuid:org"}},
		"about a Patient outside":      {"resourceType": "Goal", "subject": map[string]any{"reference": "Patient/123"}},
	} {
		bad := &bundle{Entry: []entry{{Resource: goal}, {FullURL: "urn:uuid:org", Resource: org}},
			byURL: map[string]map[string]any{"urn:uuid:org": org}}
		if len(failures(func(r reporter) { checkReferences(r, bad) })) == 0 {
			t.Errorf("a Goal %s passed the reference check", name)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// usCore lists, per resource type, the US Core 6.1.0 profile the export
// claims and the elements that profile makes mandatory (min ≥ 1 in the
// 6.1.0 StructureDefinitions), plus the Must Support elements the store
// always has data for. A path holds when any element along it is present;
// "name.family|name._family" holds with either (a data-absent-reason
// extension stands for a value the store lacks). MedicationRequest's
// authoredOn is Must Support, not mandatory, in 6.1.0 and the store does not
// know when a prescription was written, so it is not required here.
var usCore = map[string]struct {
	profile  string
	required []string
}{
	"Patient":            {"us-core-patient", []string{"identifier.system", "identifier.value", "name.family|name.given|name.extension", "gender"}},
	"Organization":       {"us-core-organization", []string{"identifier.system", "identifier.value", "active", "name|_name"}},
	"Practitioner":       {"us-core-practitioner", []string{"identifier.system", "identifier.value", "name", "name.family|name._family"}},
	"MedicationRequest":  {"us-core-medicationrequest", []string{"status", "intent", "category", "reportedReference", "medicationCodeableConcept", "subject"}},
	"MedicationDispense": {"us-core-medicationdispense", []string{"status", "medicationCodeableConcept", "subject", "authorizingPrescription"}},
	"AllergyIntolerance": {"us-core-allergyintolerance", []string{"clinicalStatus.coding.code", "verificationStatus.coding.code", "code", "patient"}},
	"CarePlan":           {"us-core-careplan", []string{"text.status", "text.div", "status", "intent", "category", "subject"}},
	"Goal":               {"us-core-goal", []string{"lifecycleStatus", "description.text", "subject", "expressedBy"}},
	"Encounter":          {"us-core-encounter", []string{"identifier.system", "identifier.value", "status", "class", "type", "subject", "period", "serviceProvider"}},
	"Procedure":          {"us-core-procedure", []string{"status", "code.coding.code", "subject", "encounter"}},
	// No US Core 6.1.0 profile, or one whose invariants the store cannot
	// meet (us-core-practitionerrole's pd-1 needs a telecom or endpoint):
	// such resources must claim nothing.
	"MedicationStatement": {},
	"Communication":       {},
	"PractitionerRole":    {},
}

// has reports whether any element along path (dot-separated, arrays
// traversed) is present in v.
func has(v any, path string) bool {
	if path == "" {
		return v != nil
	}
	head, rest, _ := strings.Cut(path, ".")
	switch t := v.(type) {
	case map[string]any:
		child, ok := t[head]
		return ok && has(child, rest)
	case []any:
		for _, child := range t {
			if has(child, path) {
				return true
			}
		}
	}
	return false
}

func checkUSCore(errorf reporter, b *bundle) {
	for _, e := range b.Entry {
		r := e.Resource
		kind := r["resourceType"].(string)
		spec, known := usCore[kind]
		if !known {
			errorf("%s: a resource type the US Core table does not cover", kind)
			continue
		}
		meta, _ := r["meta"].(map[string]any)
		profiles, _ := meta["profile"].([]any)
		if spec.profile == "" {
			if len(profiles) > 0 {
				errorf("%s claims %v, which it does not meet", kind, profiles)
			}
			continue
		}
		if want := "http://hl7.org/fhir/us/core/StructureDefinition/" + spec.profile; len(profiles) != 1 || profiles[0] != want {
			errorf("%s meta.profile = %v, want [%s]", kind, profiles, want)
		}
		for _, path := range spec.required {
			ok := false
			for _, alt := range strings.Split(path, "|") {
				ok = ok || has(r, alt)
			}
			if !ok {
				errorf("%s %s lacks %s, which %s requires", kind, identifierValue(r), path, spec.profile)
			}
		}
		// The profiles' invariants and required bindings.
		status, _ := r["status"].(string)
		switch kind {
		case "Patient":
			if g, _ := r["gender"].(string); !contains([]string{"male", "female", "other", "unknown"}, g) {
				errorf("Patient gender %v is outside AdministrativeGender", g)
			}
		case "MedicationRequest":
			if r["intent"] == "order" && r["requester"] == nil {
				errorf("MedicationRequest %s: us-core-21, an order needs a requester", identifierValue(r))
			}
			if !contains([]string{"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"}, status) {
				errorf("MedicationRequest status %q is outside the required value set", status)
			}
		case "MedicationDispense":
			if status == "completed" && r["whenHandedOver"] == nil {
				errorf("MedicationDispense %s: us-core-20, completed needs whenHandedOver", identifierValue(r))
			}
		case "Procedure":
			if (status == "completed" || status == "in-progress") && r["performedDateTime"] == nil && r["performedPeriod"] == nil {
				errorf("Procedure %s: us-core-7, %s needs performed[x]", identifierValue(r), status)
			}
		case "CarePlan":
			if !bytes.Contains(mustJSON(r["category"]), []byte(`"code":"assess-plan","display":"Assessment and Plan of Treatment","system":"http://hl7.org/fhir/us/core/CodeSystem/careplan-category"`)) {
				errorf("CarePlan category %s lacks the AssessPlan slice", mustJSON(r["category"]))
			}
		case "AllergyIntolerance":
			if !has(r, "clinicalStatus.coding.system") || r["clinicalStatus"].(map[string]any)["coding"].([]any)[0].(map[string]any)["system"] != "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical" {
				errorf("AllergyIntolerance clinicalStatus %v is not from the required code system", r["clinicalStatus"])
			}
		}
	}
}

func mustJSON(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

func TestUSCoreRequiredElements(t *testing.T) {
	b, _ := export(t, input())
	checkUSCore(t.Errorf, b)

	// The check has teeth: a MedicationRequest without its medication, an
	// order without a requester, a Patient without gender or a resource
	// without its profile fails it.
	for _, tc := range []struct{ kind, id, drop string }{
		{"MedicationRequest", "md_metformin", "medicationCodeableConcept"},
		{"MedicationRequest", "md_metformin", "requester"},
		{"Patient", "pt_olive00001", "gender"},
		{"AllergyIntolerance", "al_pen", "meta"},
	} {
		r := map[string]any{}
		for k, v := range b.one(t, tc.kind, tc.id) {
			r[k] = v
		}
		delete(r, tc.drop)
		broken := &bundle{Entry: []entry{{Resource: r}}}
		if len(failures(func(rep reporter) { checkUSCore(rep, broken) })) == 0 {
			t.Errorf("a %s without %s passed the US Core check", tc.kind, tc.drop)
		}
	}
}

func TestBundleContent(t *testing.T) {
	b, _ := export(t, input())
	for kind, want := range map[string]int{
		"Patient": 1, "Organization": 1, "Practitioner": 2, "PractitionerRole": 1,
		"MedicationRequest": 4, "MedicationStatement": 1, "MedicationDispense": 2, "AllergyIntolerance": 2,
		"CarePlan": 1, "Goal": 2, "Encounter": 2, "Procedure": 2, "Communication": 2,
	} {
		if got := len(b.byType[kind]); got != want {
			t.Errorf("%d %s resources, want %d", got, kind, want)
		}
	}

	t.Run("the patient", func(t *testing.T) {
		p := b.one(t, "Patient", "pt_olive00001")
		wantJSON(t, p, "gender", `"unknown"`)
		wantJSON(t, p, "birthDate", `"1950-06-01"`)
		wantJSON(t, p, "name", `[{"family":"Oyl","given":["Olive"]}]`)
		wantJSON(t, p, "communication", `[{"language":{"coding":[{"code":"es-US","system":"urn:ietf:bcp:47"}]},"preferred":true}]`)
		wantJSON(t, p, "telecom", `[{"system":"phone","value":"555-0100"}]`)
		wantJSON(t, p, "address", `[{"line":["12 Elm St","Springfield, IL 62701"],"text":"12 Elm St, Springfield, IL 62701"}]`)
		wantJSON(t, p, "contact", `[{"name":{"text":"Olivia Oyl"},"relationship":[{"text":"daughter"}],"telecom":[{"system":"phone","value":"555-0101"}]}]`)
		// The primary-care provider is the prescriber of the same name.
		if p["generalPractitioner"].([]any)[0].(map[string]any)["reference"] != b.one(t, "MedicationRequest", "md_metformin")["requester"].(map[string]any)["reference"] {
			t.Errorf("generalPractitioner %v is not Dr. Rivera the prescriber", p["generalPractitioner"])
		}
		wantJSON(t, b.target(t, p["generalPractitioner"].([]any)[0]), "telecom", `[{"system":"phone","value":"555-0102"}]`)
	})
	t.Run("the pharmacy and its pharmacist, with their NPIs", func(t *testing.T) {
		o := b.one(t, "Organization", "ph_main")
		wantJSON(t, o, "identifier", `[{"system":"urn:mtm:pharmacy-id","value":"ph_main"},{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}]`)
		wantJSON(t, o, "telecom", `[{"system":"phone","value":"555-0199"}]`)
		wantJSON(t, o, "name", `"Main Street Pharmacy"`)
		wantJSON(t, b.one(t, "Practitioner", "ac_rph"), "identifier", `[{"system":"urn:mtm:account-id","value":"ac_rph"},{"system":"http://hl7.org/fhir/sid/us-npi","value":"1245319599"}]`)
	})
	t.Run("a prescribed PML row is an order by its prescriber, coded in RxNorm", func(t *testing.T) {
		m := b.one(t, "MedicationRequest", "md_metformin")
		wantJSON(t, m, "status", `"active"`)
		wantJSON(t, m, "intent", `"order"`)
		wantJSON(t, m, "medicationCodeableConcept", `{"coding":[{"code":"861007","display":"Metformin 500 mg","system":"http://www.nlm.nih.gov/research/umls/rxnorm"}],"text":"Metformin 500 mg"}`)
		wantJSON(t, m, "reasonCode", `[{"text":"Diabetes"}]`)
		wantJSON(t, m, "dosageInstruction", `[{"text":"1 tablet twice a day with meals","timing":{"repeat":{"boundsPeriod":{"start":"2024-01-15"}}}}]`)
		prescriber := b.target(t, m["requester"])
		wantJSON(t, prescriber, "name", `[{"_family":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]},"text":"Dr. Rivera"}]`)
		if b.target(t, m["reportedReference"])["resourceType"] != "Organization" {
			t.Errorf("reportedReference = %v, want the pharmacy", m["reportedReference"])
		}
		recorder := b.target(t, m["recorder"])
		wantJSON(t, recorder, "identifier", `[{"system":"urn:mtm:account-id","value":"ac_rph"},{"system":"http://hl7.org/fhir/sid/us-npi","value":"1245319599"}]`)
		if _, ok := m["statusReason"]; ok {
			t.Error("a current medicine has a statusReason")
		}
	})
	t.Run("one Practitioner per prescriber, however the name is typed", func(t *testing.T) {
		a := b.one(t, "MedicationRequest", "md_metformin")["requester"].(map[string]any)["reference"]
		c := b.one(t, "MedicationRequest", "md_simva")["requester"].(map[string]any)["reference"]
		if a != c {
			t.Errorf("Dr. Rivera and dr.  RIVERA are different Practitioners: %v, %v", a, c)
		}
	})
	t.Run("a stopped PML row keeps its history with the reason", func(t *testing.T) {
		m := b.one(t, "MedicationRequest", "md_simva")
		wantJSON(t, m, "status", `"stopped"`)
		wantJSON(t, m, "statusReason", `{"text":"Muscle aches"}`)
		wantJSON(t, m, "dosageInstruction", `[{"text":"1 tablet at bedtime","timing":{"repeat":{"boundsPeriod":{"end":"2026-02-01","start":"2023-05-01"}}}}]`)
		if _, ok := m["recorder"]; ok {
			t.Error("a row last edited by an account not given to the export names a recorder")
		}
	})
	t.Run("an accepted self-started medicine is the patient's own", func(t *testing.T) {
		m := b.one(t, "MedicationRequest", "md_fish")
		wantJSON(t, m, "intent", `"plan"`)
		for _, field := range []string{"requester", "reportedReference"} {
			if b.target(t, m[field])["resourceType"] != "Patient" {
				t.Errorf("%s = %v, want the patient", field, m[field])
			}
		}
	})
	t.Run("a row with no prescriber and no self-report is a plan with no requester", func(t *testing.T) {
		m := b.one(t, "MedicationRequest", "md_aspirin")
		wantJSON(t, m, "intent", `"plan"`)
		if _, ok := m["requester"]; ok {
			t.Errorf("requester = %v, want none", m["requester"])
		}
	})
	t.Run("a pending self-report is patient-specified, not pharmacist-verified", func(t *testing.T) {
		m := b.one(t, "MedicationStatement", "sr_turmeric")
		wantJSON(t, m["category"].(map[string]any), "coding", `[{"code":"patientspecified","display":"Patient Specified","system":"http://terminology.hl7.org/CodeSystem/medication-statement-category"}]`)
		if b.target(t, m["informationSource"])["resourceType"] != "Patient" {
			t.Errorf("informationSource = %v, want the patient", m["informationSource"])
		}
		for _, s := range b.byType["MedicationStatement"] {
			if v := identifierValue(s); v == "sr_wort" || v == "sr_fishoil" {
				t.Errorf("resolved self-report %s was exported as a statement", v)
			}
		}
	})
	t.Run("fills are dispenses of the PML row", func(t *testing.T) {
		d := b.one(t, "MedicationDispense", "fl_2")
		wantJSON(t, d, "status", `"completed"`)
		wantJSON(t, d, "whenHandedOver", `"2026-03-01"`)
		wantJSON(t, d, "daysSupply", `{"code":"d","system":"http://unitsofmeasure.org","unit":"day","value":90}`)
		if rx := b.target(t, d["authorizingPrescription"].([]any)[0]); identifierValue(rx) != "md_metformin" {
			t.Errorf("authorizingPrescription = %v, want the metformin row", rx)
		}
	})
	t.Run("allergies and side effects", func(t *testing.T) {
		a := b.one(t, "AllergyIntolerance", "al_pen")
		wantJSON(t, a, "type", `"allergy"`)
		wantJSON(t, a, "clinicalStatus", `{"coding":[{"code":"active","display":"Active","system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"}]}`)
		wantJSON(t, a, "verificationStatus", `{"coding":[{"code":"confirmed","display":"Confirmed","system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"}]}`)
		wantJSON(t, a, "reaction", `[{"manifestation":[{"text":"Hives"}]}]`)
		wantJSON(t, b.one(t, "AllergyIntolerance", "al_codeine"), "type", `"intolerance"`)
	})
	t.Run("the action plan", func(t *testing.T) {
		cp := b.one(t, "CarePlan", "pt_olive00001")
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
		g := b.target(t, first["detail"].(map[string]any)["goal"].([]any)[0])
		wantJSON(t, g, "description", `{"text":"Walk 20 minutes after dinner"}`)
		wantJSON(t, g, "startDate", `"2026-03-17"`)
		if b.target(t, g["expressedBy"])["resourceType"] != "Patient" {
			t.Errorf("Goal expressedBy %v, want the patient", g["expressedBy"])
		}
	})
	t.Run("a CMR by telephone", func(t *testing.T) {
		p := b.one(t, "Procedure", "rv_cmr")
		wantJSON(t, p, "status", `"completed"`)
		wantJSON(t, p, "code", `{"coding":[{"code":"182836005","display":"Review of medication (procedure)","system":"http://snomed.info/sct"}],"text":"Comprehensive medication review (CMR)"}`)
		wantJSON(t, p, "performedDateTime", `"2026-03-14"`)
		wantJSON(t, p, "note", `[{"text":"Medication-related problem found: Post-dinner glucose above goal"},{"text":"Referral to Dr. Rivera: Suggested a statin change. Outcome: Accepted"},{"text":"Written summary delivered on 2026-03-16 by mail to patient"}]`)
		// Due 2026-04-01 02:00 UTC is still March 31 in Chicago.
		wantJSON(t, p, "followUp", `[{"text":"Follow-up on 2026-03-31"}]`)
		perf := p["performer"].([]any)[0].(map[string]any)
		if identifierValue(b.target(t, perf["actor"])) != "ac_rph" || b.target(t, perf["onBehalfOf"])["resourceType"] != "Organization" {
			t.Errorf("performer = %v, want the pharmacist for the pharmacy", perf)
		}
		e := b.target(t, p["encounter"])
		wantJSON(t, e, "class", `{"code":"VR","display":"virtual","system":"http://terminology.hl7.org/CodeSystem/v3-ActCode"}`)
		wantJSON(t, e, "type", `[{"coding":[{"code":"308335008","display":"Patient encounter procedure (procedure)","system":"http://snomed.info/sct"},{"code":"185317003","display":"Telephone encounter (procedure)","system":"http://snomed.info/sct"}],"text":"Comprehensive medication review (CMR), by telephone"}]`)
		wantJSON(t, e, "period", `{"end":"2026-03-14","start":"2026-03-14"}`)
	})
	t.Run("a TMR by another method, by a pharmacist not given", func(t *testing.T) {
		p := b.one(t, "Procedure", "rv_tmr")
		if b.target(t, p["performer"].([]any)[0].(map[string]any)["actor"])["resourceType"] != "Organization" {
			t.Errorf("performer = %v, want the pharmacy", p["performer"])
		}
		e := b.one(t, "Encounter", "rv_tmr")
		wantJSON(t, e, "class", `{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}`)
		wantJSON(t, e, "type", `[{"coding":[{"code":"308335008","display":"Patient encounter procedure (procedure)","system":"http://snomed.info/sct"}],"text":"Targeted medication review (TMR), delivery: other"}]`)
		if _, ok := e["participant"]; ok {
			t.Error("an Encounter names a participant the export was not given")
		}
	})
	t.Run("the pharmacist's role at the pharmacy", func(t *testing.T) {
		role := b.byType["PractitionerRole"][0]
		if identifierValue(b.target(t, role["practitioner"])) != "ac_rph" || b.target(t, role["organization"])["resourceType"] != "Organization" {
			t.Errorf("role = %v", role)
		}
		if !bytes.Contains(mustJSON(role["code"]), []byte(`"code":"183500000X"`)) {
			t.Errorf("role code %v lacks NUCC Pharmacist", role["code"])
		}
	})
}

// TestPlanNarrativeIsEscapedXHTML checks the CarePlan's narrative is
// well-formed XHTML in the XHTML namespace and that record text is escaped,
// not interpreted as markup.
func TestPlanNarrativeIsEscapedXHTML(t *testing.T) {
	b, _ := export(t, input())
	text := b.one(t, "CarePlan", "pt_olive00001")["text"].(map[string]any)
	if text["status"] != "generated" {
		t.Errorf("narrative status %v", text["status"])
	}
	div := text["div"].(string)
	if err := wellFormedXHTML(div); err != nil {
		t.Fatalf("narrative is not well-formed XHTML: %v\n%s", err, div)
	}
	for _, want := range []string{"Readings &lt;b&gt;vary&lt;/b&gt;", "Keep a glucose log &amp; bring it", "What I did: Walked 4 evenings (on 2026-03-10)", "Can I take ibuprofen?"} {
		if !strings.Contains(div, want) {
			t.Errorf("narrative lacks %q:\n%s", want, div)
		}
	}
}

// wellFormedXHTML reports whether div parses as XML whose root is a div in
// the XHTML namespace, as FHIR requires of Narrative.div.
func wellFormedXHTML(div string) error {
	dec := xml.NewDecoder(strings.NewReader(div))
	dec.Strict = true
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if depth != 0 {
				return errors.New("unclosed elements")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (el.Name.Local != "div" || el.Name.Space != "http://www.w3.org/1999/xhtml") {
				return fmt.Errorf("root is %v, want an XHTML div", el.Name)
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
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
		{"a transaction request with a space in its URL", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"PUT","url":"Patient?identifier=a b"}}]}`},
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

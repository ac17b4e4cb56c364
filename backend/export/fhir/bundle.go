// Package fhir exports a patient's MTM record as a FHIR R4 transaction
// Bundle (JSON) shaped by US Core 6.1.0, so that an EHR or any FHIR server
// can create, and on a later export update, the patient's medication list,
// fills, allergies, action plan and medication reviews.
//
// Why a transaction rather than a document: a server stores a "document"
// Bundle whole (POST /Bundle) and creates none of the resources in it, so
// nothing becomes searchable; a transaction is processed entry by entry
// (HAPI, Medplum and other servers), all or nothing, with the urn:uuid
// references rewritten to the ids the server assigns. Every entry is a
// conditional update, PUT [type]?identifier=system|value, keyed on the
// record's own id: importing the same patient again updates the resources
// instead of duplicating them (a medicine stopped since the last import
// becomes "stopped"). Resources therefore carry no id of their own (a
// client id in a conditional update conflicts with the server's); the CMS
// PDF, not this Bundle, is the attested summary the patient receives.
//
// The Bundle holds:
//   - the Patient (us-core-patient; preferred language, phone, address,
//     emergency contact and primary-care provider when stored) and the
//     pharmacy as an Organization (us-core-organization; NPI, phone and
//     address when stored);
//   - one Practitioner (us-core-practitioner) and PractitionerRole per
//     pharmacist named in Input.Pharmacists, and one Practitioner per
//     prescriber or primary-care provider the record names;
//   - one MedicationRequest (us-core-medicationrequest) per Personal
//     Medication List row, stopped ones with status "stopped";
//   - one MedicationStatement per self-reported medicine still pending
//     review, patient-specified, so it never reads as pharmacist-verified;
//   - one MedicationDispense (us-core-medicationdispense) per fill;
//   - one AllergyIntolerance (us-core-allergyintolerance) per allergy or
//     side effect;
//   - the Medication Action Plan as a CarePlan (us-core-careplan) with one
//     Goal (us-core-goal) per action item;
//   - one Encounter (us-core-encounter) and one Procedure
//     (us-core-procedure) per comprehensive or targeted medication review,
//     with its delivery method and when, how and to whom its written
//     summary was delivered;
//   - one Communication per message when messages are given.
//
// Resources are built with the github.com/samply/golang-fhir-models R4
// structs. Every reference points at an entry of the same Bundle by a
// urn:uuid full URL derived from the record id, so exports are
// deterministic.
package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/mtmapp/mtm/backend/store"
)

// ContentType is the media type of the exported Bundle.
const ContentType = "application/fhir+json"

// Pharmacist is a pharmacy staff account the record names (the pharmacist
// of a review, the last editor of a medication list row), exported as a
// Practitioner with a PractitionerRole at the pharmacy.
type Pharmacist struct {
	ID   string // account id
	Name string // display name, as stored
	NPI  string // National Provider Identifier, optional
}

// Input is what goes into an export.
type Input struct {
	Patient store.Patient
	// Pharmacy is the patient's pharmacy (phone, address, NPI); its Name
	// wins over PharmacyName when set.
	Pharmacy     store.Pharmacy
	PharmacyName string
	// Pharmacists are the staff accounts the record refers to. A reference
	// to an account not listed here is left out (a review's performer then
	// falls back to the pharmacy).
	Pharmacists []Pharmacist
	// Messages are exported as Communication resources; nil for none.
	Messages []Message
	// Now is the export's timestamp.
	Now time.Time
}

// Bundle returns the patient's record as a FHIR R4 transaction Bundle in
// JSON. It fails only if a resource cannot be encoded.
func Bundle(in Input) ([]byte, error) {
	b := newBuilder(in)
	b.patient()
	b.organization()
	for _, ph := range in.Pharmacists {
		b.pharmacist(ph)
	}
	for _, m := range in.Patient.Medications {
		b.medicationRequest(m)
	}
	for _, r := range in.Patient.SelfReports {
		if r.Status == "pending" {
			b.selfReported(r)
		}
	}
	for _, f := range in.Patient.Fills {
		b.dispense(f)
	}
	for _, a := range in.Patient.Allergies {
		b.allergy(a)
	}
	b.carePlan()
	for _, r := range in.Patient.Reviews {
		b.review(r)
	}
	for _, m := range in.Messages {
		b.communication(m)
	}
	if b.err != nil {
		return nil, fmt.Errorf("fhir.Bundle: %w", b.err)
	}
	bundle := fm.Bundle{
		Id:        ptr(fhirID(in.Patient.ID + ".export")),
		Type:      fm.BundleTypeTransaction,
		Timestamp: ptr(in.Now.UTC().Format(time.RFC3339)),
		Entry:     b.entries,
	}
	out, err := marshal(bundle)
	if err != nil {
		return nil, fmt.Errorf("fhir.Bundle: %w", err)
	}
	return out, nil
}

type builder struct {
	in      Input
	pt      store.Patient
	entries []fm.BundleEntry
	added   map[string]bool // full URLs already in entries
	// pharmacists maps account ids to their Practitioner's full URL.
	pharmacists map[string]string
	// selfStarted holds the PML rows that came from an accepted
	// self-report (OTC, herbal, supplement).
	selfStarted map[string]bool
	meds        map[string]store.Medication
	err         error
}

func newBuilder(in Input) *builder {
	if in.Pharmacy.Name != "" {
		in.PharmacyName = in.Pharmacy.Name
	}
	b := &builder{
		in: in, pt: in.Patient,
		added:       map[string]bool{},
		pharmacists: map[string]string{},
		selfStarted: map[string]bool{},
		meds:        map[string]store.Medication{},
	}
	for _, r := range in.Patient.SelfReports {
		if r.Status == "accepted" && r.MedicationID != "" {
			b.selfStarted[r.MedicationID] = true
		}
	}
	for _, m := range in.Patient.Medications {
		b.meds[m.ID] = m
	}
	return b
}

// record is one resource to add: its type, the record id it comes from
// (which names its full URL), and the identifier the transaction's
// conditional update matches on.
type record struct {
	kind, key string
	id        fm.Identifier
}

// rec returns the record for a resource of kind whose identifier is value
// in system; the full URL derives from kind and value.
func rec(kind, system, value string) record {
	return record{kind: kind, key: value, id: fm.Identifier{System: ptr(system), Value: ptr(value)}}
}

func (r record) url() string { return fullURL(r.kind, r.key) }

func (r record) ref(display string) fm.Reference {
	return fm.Reference{Reference: ptr(r.url()), Display: nonEmpty(display)}
}

// add appends resource as a conditional update keyed on r's identifier.
// patches edit the encoded resource before it is pruned, for what the
// generated structs cannot express (data-absent-reason extensions on
// primitives). Adding the same record twice keeps the first.
func (b *builder) add(r record, resource any, patches ...func(map[string]any)) {
	if b.err != nil || b.added[r.url()] {
		return
	}
	raw, err := marshal(resource, patches...)
	if err != nil {
		b.err = fmt.Errorf("%s: %w", r.kind, err)
		return
	}
	b.added[r.url()] = true
	b.entries = append(b.entries, fm.BundleEntry{
		FullUrl:  ptr(r.url()),
		Resource: raw,
		Request: &fm.BundleEntryRequest{
			Method: fm.HTTPVerbPUT,
			Url:    r.kind + "?identifier=" + url.QueryEscape(*r.id.System+"|"+*r.id.Value),
		},
	})
}

// fhirID turns a record id ([A-Za-z0-9_-]) into a FHIR id
// ([A-Za-z0-9.-]{1,64}): '_' becomes '.', which record ids never contain;
// an id too long for FHIR becomes a name-based UUID.
func fhirID(id string) string {
	if len(id) > 64 {
		return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:mtm:id/"+id)).String()
	}
	return strings.ReplaceAll(id, "_", ".")
}

// fullURL is the stable urn:uuid of a resource in the Bundle.
func fullURL(kind, id string) string {
	return "urn:uuid:" + uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:mtm:"+kind+"/"+id)).String()
}

// marshal encodes a FHIR value as JSON without the empty objects and
// arrays that the generated structs emit for unset non-pointer fields
// (FHIR forbids empty elements), without escaping HTML characters.
// patches edit the decoded tree first.
func marshal(v any, patches ...func(map[string]any)) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	if m, ok := tree.(map[string]any); ok {
		for _, p := range patches {
			p(m)
		}
	}
	tree, _ = prune(tree)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// prune drops empty objects, arrays and strings; keep is false when v
// itself is empty.
func prune(v any) (out any, keep bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if c, ok := prune(child); ok {
				t[k] = c
			} else {
				delete(t, k)
			}
		}
		return t, len(t) > 0
	case []any:
		kept := t[:0]
		for _, child := range t {
			if c, ok := prune(child); ok {
				kept = append(kept, c)
			}
		}
		return kept, len(kept) > 0
	case string:
		return t, t != ""
	}
	return v, v != nil
}

func ptr[T any](v T) *T { return &v }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonEmptySlice(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func textConcept(s string) *fm.CodeableConcept {
	if s == "" {
		return nil
	}
	return &fm.CodeableConcept{Text: ptr(s)}
}

func textConcepts(s string) []fm.CodeableConcept {
	if s == "" {
		return nil
	}
	return []fm.CodeableConcept{{Text: ptr(s)}}
}

func period(start, end store.Date) *fm.Period {
	if start.IsZero() && end.IsZero() {
		return nil
	}
	return &fm.Period{Start: nonEmpty(start.String()), End: nonEmpty(end.String())}
}

// phone is a telephone ContactPoint, or nil for an empty number.
func phone(number string) []fm.ContactPoint {
	if strings.TrimSpace(number) == "" {
		return nil
	}
	return []fm.ContactPoint{{System: ptr(fm.ContactPointSystemPhone), Value: ptr(strings.TrimSpace(number))}}
}

// address is a postal address kept as lines of text (the store does not
// split city, state and ZIP code), or nil.
func address(text string) *fm.Address {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil
	}
	return &fm.Address{Text: ptr(strings.Join(lines, ", ")), Line: lines}
}

// npi is an NPI identifier, or nil.
func npi(number string) []fm.Identifier {
	if number == "" {
		return nil
	}
	return []fm.Identifier{{System: ptr(systemNPI), Value: ptr(number)}}
}

func instant(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return ptr(t.UTC().Format(time.RFC3339))
}

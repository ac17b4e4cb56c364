package fhir

import (
	"strings"

	"github.com/google/uuid"
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func (b *builder) patientRec() record { return rec("Patient", idPatient, b.pt.ID) }

func (b *builder) patientRef() fm.Reference {
	return b.patientRec().ref(strings.TrimSpace(b.pt.GivenName + " " + b.pt.FamilyName))
}

func (b *builder) pharmacyRec() record { return rec("Organization", idPharmacy, b.pt.PharmacyID) }

func (b *builder) pharmacyRef() *fm.Reference {
	r := b.pharmacyRec().ref(b.in.PharmacyName)
	return &r
}

// patient exports the profile. The store keeps no administrative gender,
// which US Core requires, so gender is "unknown" (a code of the required
// value set, meaning exactly that); a name with neither part carries a
// data-absent-reason, as US Core's us-core-6 allows.
func (b *builder) patient() {
	pt := b.pt
	p := fm.Patient{
		Meta:                 profile(profilePatient),
		Identifier:           []fm.Identifier{b.patientRec().id},
		Active:               ptr(true),
		Name:                 []fm.HumanName{{Family: nonEmpty(pt.FamilyName), Given: nonEmptySlice(pt.GivenName)}},
		Gender:               ptr(fm.AdministrativeGenderUnknown),
		BirthDate:            nonEmpty(pt.DateOfBirth.String()),
		Telecom:              phone(pt.Phone),
		ManagingOrganization: b.pharmacyRef(),
	}
	if a := address(pt.Address); a != nil {
		p.Address = []fm.Address{*a}
	}
	if c := pt.EmergencyContact; c.Name != "" || c.Phone != "" {
		p.Contact = []fm.PatientContact{{
			Relationship: textConcepts(c.Relationship),
			Name:         &fm.HumanName{Text: nonEmpty(c.Name)},
			Telecom:      phone(c.Phone),
		}}
	}
	if pcp := b.prescriberRef(pt.PrimaryCare.Name, pt.PrimaryCare.Phone); pcp != nil {
		p.GeneralPractitioner = []fm.Reference{*pcp}
	}
	if pt.PreferredLanguage != "" { // BCP 47, the code system US Core binds
		p.Communication = []fm.PatientCommunication{{
			Language:  concept(coding(systemBCP47, pt.PreferredLanguage, ""), ""),
			Preferred: ptr(true),
		}}
	}
	var patches []func(map[string]any)
	if pt.FamilyName == "" && pt.GivenName == "" {
		patches = append(patches, func(m map[string]any) { m["name"] = []any{dataAbsent()} })
	}
	b.add(b.patientRec(), p, patches...)
}

// organization exports the pharmacy; a pharmacy without a stored name gets
// a data-absent-reason for the name US Core requires.
func (b *builder) organization() {
	o := fm.Organization{
		Meta:       profile(profileOrganization),
		Identifier: []fm.Identifier{b.pharmacyRec().id},
		Active:     ptr(true),
		Type:       []fm.CodeableConcept{concept(coding(systemOrganizationType, "prov", "Healthcare Provider"), "Pharmacy")},
		Name:       nonEmpty(b.in.PharmacyName),
		Telecom:    phone(b.in.Pharmacy.Phone),
	}
	o.Identifier = append(o.Identifier, npi(b.in.Pharmacy.NPI)...)
	if a := address(b.in.Pharmacy.Address); a != nil {
		o.Address = []fm.Address{*a}
	}
	var patches []func(map[string]any)
	if b.in.PharmacyName == "" {
		patches = append(patches, func(m map[string]any) { m["_name"] = dataAbsent() })
	}
	b.add(b.pharmacyRec(), o, patches...)
}

// practitionerName is a Practitioner's name from a display string: the
// store keeps names as one string, so the whole is HumanName.text and the
// family name US Core requires carries a data-absent-reason rather than a
// guess at which word is the surname.
func practitionerName(display string) ([]fm.HumanName, func(map[string]any)) {
	return []fm.HumanName{{Text: nonEmpty(strings.TrimSpace(display))}}, func(m map[string]any) {
		names, _ := m["name"].([]any)
		if len(names) == 0 {
			names = []any{map[string]any{}}
		}
		first, _ := names[0].(map[string]any)
		first["_family"] = dataAbsent()
		names[0] = first
		m["name"] = names
	}
}

// pharmacist adds a staff account as a Practitioner and its
// PractitionerRole at the pharmacy.
func (b *builder) pharmacist(ph Pharmacist) {
	if ph.ID == "" {
		return
	}
	r := rec("Practitioner", idAccount, ph.ID)
	name, patch := practitionerName(ph.Name)
	b.add(r, fm.Practitioner{
		Meta:       profile(profilePractitioner),
		Identifier: append([]fm.Identifier{r.id}, npi(ph.NPI)...),
		Active:     ptr(true),
		Name:       name,
	}, patch)
	b.pharmacists[ph.ID] = r.url()

	role := rec("PractitionerRole", idAccount, ph.ID)
	practitioner := r.ref(ph.Name)
	b.add(role, fm.PractitionerRole{
		Identifier:   []fm.Identifier{role.id},
		Active:       ptr(true),
		Practitioner: &practitioner,
		Organization: b.pharmacyRef(),
		Code:         []fm.CodeableConcept{pharmacistRoleCode},
	})
}

// pharmacistRef returns the Practitioner of a staff account given in
// Input.Pharmacists, or nil.
func (b *builder) pharmacistRef(accountID string) *fm.Reference {
	u, ok := b.pharmacists[accountID]
	if !ok {
		return nil
	}
	for _, ph := range b.in.Pharmacists {
		if ph.ID == accountID {
			return &fm.Reference{Reference: ptr(u), Display: nonEmpty(ph.Name)}
		}
	}
	return &fm.Reference{Reference: ptr(u)}
}

// prescriberRef adds a prescriber or primary-care provider the record
// names as a Practitioner and returns a reference to it. The store keeps
// such a name as free text with no NPI, so the Practitioner has only a name
// (and a phone when known), and an identifier of this pharmacy's own: the
// same name at the same pharmacy is the same Practitioner, whatever its
// spacing or case (the first phone seen for it is kept).
func (b *builder) prescriberRef(name, phoneNumber string) *fm.Reference {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil
	}
	key := strings.Join(strings.Fields(strings.ToLower(name)), " ")
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:mtm:prescriber/"+b.pt.PharmacyID+"/"+key)).String()
	r := rec("Practitioner", idPrescriber, id)
	names, patch := practitionerName(name)
	b.add(r, fm.Practitioner{
		Meta:       profile(profilePractitioner),
		Identifier: []fm.Identifier{r.id},
		Name:       names,
		Telecom:    phone(phoneNumber),
	}, patch)
	ref := r.ref(name)
	return &ref
}

package api

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var outcomeToProto = map[store.AuditOutcome]mtmv1.AccessOutcome{
	store.OutcomeAllowed:   mtmv1.AccessOutcome_ACCESS_OUTCOME_ALLOWED,
	store.OutcomeDenied:    mtmv1.AccessOutcome_ACCESS_OUTCOME_DENIED,
	store.OutcomeFailed:    mtmv1.AccessOutcome_ACCESS_OUTCOME_FAILED,
	store.OutcomeThrottled: mtmv1.AccessOutcome_ACCESS_OUTCOME_THROTTLED,
}

var roleToProto = map[store.Role]mtmv1.Role{
	store.RolePatient:       mtmv1.Role_ROLE_PATIENT,
	store.RoleCaregiver:     mtmv1.Role_ROLE_CAREGIVER,
	store.RolePharmacist:    mtmv1.Role_ROLE_PHARMACIST,
	store.RolePharmacyAdmin: mtmv1.Role_ROLE_PHARMACY_ADMIN,
}

func patientToProto(p store.Patient) *mtmv1.Patient {
	return &mtmv1.Patient{
		Id:                p.ID,
		PharmacyId:        p.PharmacyID,
		GivenName:         p.GivenName,
		FamilyName:        p.FamilyName,
		DateOfBirth:       p.DateOfBirth.String(),
		TimeZone:          p.TimeZone,
		QuietHours:        &mtmv1.QuietHours{StartMinute: int32(p.QuietHours.StartMinute), EndMinute: int32(p.QuietHours.EndMinute)},
		PushNamesMedicine: p.PushNamesMedicine,
		PreferredLanguage: p.PreferredLanguage,
		Address:           p.Address,
		Phone:             p.Phone,
		EmergencyContact:  contactToProto(p.EmergencyContact),
		PrimaryCare:       contactToProto(p.PrimaryCare),
		ActivatedAt:       ts(p.ActivatedAt),
		Version:           p.CurrentProfileVersion(),
	}
}

func medicationToProto(m store.Medication) *mtmv1.Medication {
	out := &mtmv1.Medication{}
	setMedication(out, m, ts(m.UpdatedAt))
	return out
}

// setMedication fills the zero message out with m, and updatedAt.
func setMedication(out *mtmv1.Medication, m store.Medication, updatedAt *timestamppb.Timestamp) {
	out.Id = m.ID
	out.Name = m.Name
	out.Strength = m.Strength
	out.Rxcui = m.RxCUI
	out.HowIUseIt = m.HowIUseIt
	out.WhyIUseIt = m.WhyIUseIt
	out.Prescriber = m.Prescriber
	out.PrescriberPhone = m.PrescriberPhone
	out.StartedOn = m.StartedOn.String()
	out.StoppedOn = m.StoppedOn.String()
	out.WhyStopped = m.WhyStopped
	out.UpdatedAt = updatedAt
	out.Version = m.Version
}

var allergyKindToProto = map[store.AllergyKind]mtmv1.AllergyKind{
	store.KindAllergy:    mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY,
	store.KindSideEffect: mtmv1.AllergyKind_ALLERGY_KIND_SIDE_EFFECT,
}

func allergyToProto(a store.Allergy) *mtmv1.Allergy {
	return &mtmv1.Allergy{
		Id:         a.ID,
		Kind:       allergyKindToProto[a.Kind],
		Substance:  a.Substance,
		Reaction:   a.Reaction,
		RecordedAt: ts(a.RecordedAt),
	}
}

func fillToProto(f store.Fill) *mtmv1.Fill {
	return &mtmv1.Fill{Id: f.ID, MedicationId: f.MedicationID, FilledOn: f.FilledOn.String(), DaysSupply: int32(f.DaysSupply)}
}

// medicationListToProto returns the PML: current medicines first, then
// stopped ones, each group in the order they were added. The rows and their
// timestamps are allocated together, a few arrays per list instead of two
// or three objects per row.
func medicationListToProto(p store.Patient) *mtmv1.PersonalMedicationList {
	meds := clinical.PMLOrder(p.Medications)
	stamps := make([]timestamppb.Timestamp, 0, 1+len(meds)+len(p.Allergies))
	stamp := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		stamps = append(stamps, timestamppb.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())})
		return &stamps[len(stamps)-1]
	}
	out := &mtmv1.PersonalMedicationList{
		PatientId:        p.ID,
		OtherInformation: p.OtherInformation,
		UpdatedAt:        stamp(p.UpdatedAt),
		Medications:      make([]*mtmv1.Medication, len(meds)),
		Allergies:        make([]*mtmv1.Allergy, len(p.Allergies)),
		Fills:            make([]*mtmv1.Fill, len(p.Fills)),
	}
	medRows := make([]mtmv1.Medication, len(meds))
	for i, m := range meds {
		setMedication(&medRows[i], m, stamp(m.UpdatedAt))
		out.Medications[i] = &medRows[i]
	}
	allergyRows := make([]mtmv1.Allergy, len(p.Allergies))
	for i, a := range p.Allergies {
		r := &allergyRows[i]
		r.Id, r.Kind, r.Substance, r.Reaction, r.RecordedAt = a.ID, allergyKindToProto[a.Kind], a.Substance, a.Reaction, stamp(a.RecordedAt)
		out.Allergies[i] = r
	}
	fillRows := make([]mtmv1.Fill, len(p.Fills))
	for i, f := range p.Fills {
		r := &fillRows[i]
		r.Id, r.MedicationId, r.FilledOn, r.DaysSupply = f.ID, f.MedicationID, f.FilledOn.String(), int32(f.DaysSupply)
		out.Fills[i] = r
	}
	return out
}

func actionItemToProto(a store.ActionItem) *mtmv1.ActionItem {
	out := &mtmv1.ActionItem{
		Id:                a.ID,
		WhatWeTalkedAbout: a.WhatWeTalkedAbout,
		WhatINeedToDo:     a.WhatINeedToDo,
		UpdatedAt:         ts(a.UpdatedAt),
		Version:           a.Version,
	}
	for _, pr := range a.Progress {
		out.Progress = append(out.Progress, &mtmv1.Progress{WhatIDid: pr.WhatIDid, DoneOn: pr.DoneOn.String(), RecordedAt: ts(pr.RecordedAt)})
	}
	return out
}

func actionPlanToProto(p store.Patient) *mtmv1.MedicationActionPlan {
	out := &mtmv1.MedicationActionPlan{PatientId: p.ID, FollowUpPlan: p.FollowUpPlan, Questions: p.Questions}
	for _, a := range p.ActionItems {
		out.Items = append(out.Items, actionItemToProto(a))
	}
	return out
}

func contactToProto(c store.Contact) *mtmv1.Contact {
	if c == (store.Contact{}) {
		return nil
	}
	return &mtmv1.Contact{Name: c.Name, Relationship: c.Relationship, Phone: c.Phone}
}

func contactFromProto(c *mtmv1.Contact) store.Contact {
	return store.Contact{Name: strings.TrimSpace(c.GetName()), Relationship: strings.TrimSpace(c.GetRelationship()), Phone: strings.TrimSpace(c.GetPhone())}
}

func pharmacyToProto(p store.Pharmacy) *mtmv1.Pharmacy {
	return &mtmv1.Pharmacy{Id: p.ID, Name: p.Name, Phone: p.Phone, Tty: p.TTY, Hours: p.Hours, Address: p.Address, Npi: p.NPI, PlanName: p.PlanName,
		RequireSecondFactor: p.RequireSecondFactor}
}

package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// EnrollPatient implements mtm.v1.CareService.EnrollPatient. The patient is
// created in the caller's pharmacy. Should issuing the code fail after the
// patient was stored, the record is whole and IssueActivationCode makes a
// new code.
func (s *CareService) EnrollPatient(ctx context.Context, req *connect.Request[mtmv1.EnrollPatientRequest]) (*connect.Response[mtmv1.EnrollPatientResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	dob, err := c.pastOrToday("date_of_birth", m.GetDateOfBirth())
	if err != nil {
		return nil, err
	}
	if err := checkTimeZone("time_zone", m.GetTimeZone()); err != nil {
		return nil, err
	}
	lang, err := checkLanguage("preferred_language", m.GetPreferredLanguage())
	if err != nil {
		return nil, err
	}
	id, err := auth.NewID("pt")
	if err != nil {
		return nil, err
	}
	now := c.Now()
	pt := store.Patient{
		ID:                id,
		PharmacyID:        p.PharmacyID,
		GivenName:         strings.TrimSpace(m.GetGivenName()),
		FamilyName:        strings.TrimSpace(m.GetFamilyName()),
		DateOfBirth:       dob,
		TimeZone:          m.GetTimeZone(),
		PreferredLanguage: lang,
		CreatedAt:         now,
		UpdatedAt:         now,
	}
	c.worklistDates(&pt) // due for a CMR at once
	if err := c.Store.CreatePatient(ctx, pt); err != nil {
		return nil, err
	}
	audit.Touch(ctx, pt.ID, "")
	audit.Granted(ctx)
	code, exp, err := c.issueActivationCode(ctx, pt.ID)
	if err != nil {
		return nil, err
	}
	pt.Version = 1
	return connect.NewResponse(&mtmv1.EnrollPatientResponse{Patient: patientToProto(pt), ActivationCode: code, ActivationCodeExpiresAt: ts(exp)}), nil
}

// IssueActivationCode implements mtm.v1.CareService.IssueActivationCode.
func (s *CareService) IssueActivationCode(ctx context.Context, req *connect.Request[mtmv1.IssueActivationCodeRequest]) (*connect.Response[mtmv1.IssueActivationCodeResponse], error) {
	_, pt, err := s.cfg.loadForCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	code, exp, err := s.cfg.issueActivationCode(ctx, pt.ID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.IssueActivationCodeResponse{ActivationCode: code, ActivationCodeExpiresAt: ts(exp)}), nil
}

// issueActivationCode stores a fresh code for the patient (replacing any
// earlier one) and returns it in its human form.
func (c Config) issueActivationCode(ctx context.Context, patientID string) (string, time.Time, error) {
	now := c.Now()
	for attempt := 0; ; attempt++ {
		code, err := auth.NewActivationCode()
		if err != nil {
			return "", time.Time{}, err
		}
		ac := store.ActivationCode{
			CodeHash:  auth.HashSecret(auth.NormalizeActivationCode(code)),
			PatientID: patientID,
			ExpiresAt: now.Add(c.ActivationCodeTTL),
			CreatedAt: now,
		}
		err = c.Store.PutActivationCode(ctx, ac)
		if errors.Is(err, store.ErrAlreadyExists) && attempt < 3 {
			continue // a live code with the same value; draw again
		}
		return code, ac.ExpiresAt, err
	}
}

// SearchPatients implements mtm.v1.CareService.SearchPatients. The page
// token is the id of the last patient returned.
func (s *CareService) SearchPatients(ctx context.Context, req *connect.Request[mtmv1.SearchPatientsRequest]) (*connect.Response[mtmv1.SearchPatientsResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	size := int(m.GetPageSize())
	if size == 0 {
		size = 50
	}
	prefix := strings.ToLower(strings.TrimSpace(m.GetNamePrefix()))
	var dob store.Date
	if m.GetDateOfBirth() != "" {
		if dob, err = store.ParseDate(m.GetDateOfBirth()); err != nil {
			return nil, invalidField("date_of_birth", "not a calendar date (YYYY-MM-DD)")
		}
		if prefix != "" {
			// A family name and a birth date: an exact lookup through the
			// store's blind index (names are sealed at rest).
			// Typed with stray spaces ("de la  cruz ") it still finds the
			// patient: both stores index the name as entered at enrollment.
			family := strings.Join(strings.Fields(m.GetNamePrefix()), " ")
			found, err := c.Store.FindPatients(ctx, p.PharmacyID, family, dob)
			if err != nil {
				return nil, err
			}
			out := &mtmv1.SearchPatientsResponse{}
			for _, pt := range found[:min(len(found), size)] {
				out.Patients = append(out.Patients, patientToProto(pt))
			}
			return connect.NewResponse(out), nil
		}
	}
	after := m.GetPageToken()
	out := &mtmv1.SearchPatientsResponse{}
	// Scan a bounded number of store pages per call; the token lets the
	// client continue where the scan stopped.
	const scanPage, maxScans = 200, 25
	for scans := 0; scans < maxScans && len(out.Patients) < size; scans++ {
		page, err := c.Store.ListPatients(ctx, p.PharmacyID, after, scanPage)
		if err != nil {
			return nil, err
		}
		for _, pt := range page {
			after = pt.ID
			if dob != (store.Date{}) && pt.DateOfBirth != dob {
				continue
			}
			if prefix == "" || strings.HasPrefix(strings.ToLower(pt.GivenName), prefix) || strings.HasPrefix(strings.ToLower(pt.FamilyName), prefix) {
				out.Patients = append(out.Patients, patientToProto(pt))
				if len(out.Patients) == size {
					break
				}
			}
		}
		if len(page) < scanPage && len(out.Patients) < size {
			return connect.NewResponse(out), nil // end of the list
		}
	}
	out.NextPageToken = after
	return connect.NewResponse(out), nil
}

// GetPatientRecord implements mtm.v1.CareService.GetPatientRecord.
func (s *CareService) GetPatientRecord(ctx context.Context, req *connect.Request[mtmv1.GetPatientRecordRequest]) (*connect.Response[mtmv1.GetPatientRecordResponse], error) {
	_, pt, err := s.cfg.loadForCare(ctx, req.Msg.GetPatientId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.GetPatientRecordResponse{
		Patient:        patientToProto(pt),
		MedicationList: medicationListToProto(pt),
		ActionPlan:     actionPlanToProto(pt),
		Conditions:     conditionsToProto(pt.Conditions),
	}), nil
}

// medicationFields checks and converts the pharmacist-entered fields.
func (c Config) medicationFields(f *mtmv1.MedicationFields) (store.Medication, error) {
	started, err := c.optionalDate("medication.started_on", f.GetStartedOn())
	if err != nil {
		return store.Medication{}, err
	}
	return store.Medication{
		Name:            strings.TrimSpace(f.GetName()),
		Strength:        strings.TrimSpace(f.GetStrength()),
		RxCUI:           f.GetRxcui(),
		HowIUseIt:       strings.TrimSpace(f.GetHowIUseIt()),
		WhyIUseIt:       strings.TrimSpace(f.GetWhyIUseIt()),
		Prescriber:      strings.TrimSpace(f.GetPrescriber()),
		PrescriberPhone: strings.TrimSpace(f.GetPrescriberPhone()),
		StartedOn:       started,
	}, nil
}

// AddMedication implements mtm.v1.CareService.AddMedication.
func (s *CareService) AddMedication(ctx context.Context, req *connect.Request[mtmv1.AddMedicationRequest]) (*connect.Response[mtmv1.AddMedicationResponse], error) {
	c, m := s.cfg, req.Msg
	med, err := c.medicationFields(m.GetMedication())
	if err != nil {
		return nil, err
	}
	if med.ID, err = auth.NewID("md"); err != nil {
		return nil, err
	}
	_, err = c.updateForCare(ctx, m.GetPatientId(), func(p auth.Principal, pt *store.Patient) error {
		med.UpdatedAt, med.UpdatedBy, med.Version = c.Now(), p.Subject, 1
		pt.Medications = append(pt.Medications, med)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.AddMedicationResponse{Medication: medicationToProto(med)}), nil
}

// changeMedication applies fn to one PML row at the expected version.
func (c Config) changeMedication(ctx context.Context, patientID, medicationID string, expected int64, reason string, fn func(*store.Medication) error) (store.Medication, error) {
	var out store.Medication
	_, err := c.updateForCare(ctx, patientID, func(p auth.Principal, pt *store.Patient) error {
		for i := range pt.Medications {
			med := &pt.Medications[i]
			if med.ID != medicationID {
				continue
			}
			if med.Version != expected {
				return staleVersion("medication", med.Version)
			}
			if err := fn(med); err != nil {
				return err
			}
			now := c.Now()
			med.UpdatedAt, med.UpdatedBy = now, p.Subject
			med.Version++
			med.History = append(med.History, store.MedicationChange{At: now, By: p.Subject, Reason: reason})
			out = *med
			return nil
		}
		return notFound("medication")
	})
	return out, err
}

// ChangeMedication implements mtm.v1.CareService.ChangeMedication.
func (s *CareService) ChangeMedication(ctx context.Context, req *connect.Request[mtmv1.ChangeMedicationRequest]) (*connect.Response[mtmv1.ChangeMedicationResponse], error) {
	c, m := s.cfg, req.Msg
	fields, err := c.medicationFields(m.GetMedication())
	if err != nil {
		return nil, err
	}
	med, err := c.changeMedication(ctx, m.GetPatientId(), m.GetMedicationId(), m.GetExpectedVersion(), m.GetReason(), func(med *store.Medication) error {
		if !med.Active() {
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("medication is stopped; add it again instead"))
		}
		med.Name, med.Strength, med.RxCUI = fields.Name, fields.Strength, fields.RxCUI
		med.HowIUseIt, med.WhyIUseIt, med.Prescriber, med.StartedOn = fields.HowIUseIt, fields.WhyIUseIt, fields.Prescriber, fields.StartedOn
		med.PrescriberPhone = fields.PrescriberPhone
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ChangeMedicationResponse{Medication: medicationToProto(med)}), nil
}

// StopMedication implements mtm.v1.CareService.StopMedication.
func (s *CareService) StopMedication(ctx context.Context, req *connect.Request[mtmv1.StopMedicationRequest]) (*connect.Response[mtmv1.StopMedicationResponse], error) {
	c, m := s.cfg, req.Msg
	stopped, err := c.pastOrToday("stopped_on", m.GetStoppedOn())
	if err != nil {
		return nil, err
	}
	med, err := c.changeMedication(ctx, m.GetPatientId(), m.GetMedicationId(), m.GetExpectedVersion(), m.GetWhyStopped(), func(med *store.Medication) error {
		if !med.Active() {
			return connect.NewError(connect.CodeFailedPrecondition, errors.New("medication is already stopped"))
		}
		if !med.StartedOn.IsZero() && stopped.Before(med.StartedOn) {
			return invalidField("stopped_on", "must not be before the date started")
		}
		med.StoppedOn, med.WhyStopped = stopped, m.GetWhyStopped()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.StopMedicationResponse{Medication: medicationToProto(med)}), nil
}

var allergyKindFromProto = map[mtmv1.AllergyKind]store.AllergyKind{
	mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY:     store.KindAllergy,
	mtmv1.AllergyKind_ALLERGY_KIND_SIDE_EFFECT: store.KindSideEffect,
}

// AddAllergy implements mtm.v1.CareService.AddAllergy.
func (s *CareService) AddAllergy(ctx context.Context, req *connect.Request[mtmv1.AddAllergyRequest]) (*connect.Response[mtmv1.AddAllergyResponse], error) {
	c, m := s.cfg, req.Msg
	id, err := auth.NewID("al")
	if err != nil {
		return nil, err
	}
	a := store.Allergy{ID: id, Kind: allergyKindFromProto[m.GetKind()], Substance: strings.TrimSpace(m.GetSubstance()), Reaction: strings.TrimSpace(m.GetReaction()), RecordedAt: c.Now()}
	if _, err := c.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		pt.Allergies = append(pt.Allergies, a)
		return nil
	}); err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.AddAllergyResponse{Allergy: allergyToProto(a)}), nil
}

// RemoveAllergy implements mtm.v1.CareService.RemoveAllergy.
func (s *CareService) RemoveAllergy(ctx context.Context, req *connect.Request[mtmv1.RemoveAllergyRequest]) (*connect.Response[mtmv1.RemoveAllergyResponse], error) {
	m := req.Msg
	_, err := s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		for i, a := range pt.Allergies {
			if a.ID == m.GetAllergyId() {
				pt.Allergies = append(pt.Allergies[:i:i], pt.Allergies[i+1:]...)
				return nil
			}
		}
		return notFound("allergy")
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RemoveAllergyResponse{}), nil
}

// SetOtherInformation implements mtm.v1.CareService.SetOtherInformation.
func (s *CareService) SetOtherInformation(ctx context.Context, req *connect.Request[mtmv1.SetOtherInformationRequest]) (*connect.Response[mtmv1.SetOtherInformationResponse], error) {
	m := req.Msg
	pt, err := s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		pt.OtherInformation = strings.TrimSpace(m.GetOtherInformation())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SetOtherInformationResponse{MedicationList: medicationListToProto(pt)}), nil
}

// RecordFill implements mtm.v1.CareService.RecordFill.
func (s *CareService) RecordFill(ctx context.Context, req *connect.Request[mtmv1.RecordFillRequest]) (*connect.Response[mtmv1.RecordFillResponse], error) {
	c, m := s.cfg, req.Msg
	filled, err := c.pastOrToday("filled_on", m.GetFilledOn())
	if err != nil {
		return nil, err
	}
	id, err := auth.NewID("fl")
	if err != nil {
		return nil, err
	}
	f := store.Fill{ID: id, MedicationID: m.GetMedicationId(), FilledOn: filled, DaysSupply: int(m.GetDaysSupply()), RecordedAt: c.Now()}
	var through store.Date
	pt, err := c.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		found := false
		for _, med := range pt.Medications {
			found = found || med.ID == f.MedicationID
		}
		if !found {
			return notFound("medication")
		}
		pt.Fills = append(pt.Fills, f)
		through, _ = clinical.SupplyRunsThrough(clinical.FillsOf(pt.Fills, f.MedicationID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.refillChanged(ctx, pt, f)
	return connect.NewResponse(&mtmv1.RecordFillResponse{Fill: fillToProto(f), SupplyRunsThrough: through.String()}), nil
}

// AddActionItem implements mtm.v1.CareService.AddActionItem.
func (s *CareService) AddActionItem(ctx context.Context, req *connect.Request[mtmv1.AddActionItemRequest]) (*connect.Response[mtmv1.AddActionItemResponse], error) {
	c, m := s.cfg, req.Msg
	id, err := auth.NewID("ai")
	if err != nil {
		return nil, err
	}
	now := c.Now()
	item := store.ActionItem{ID: id, WhatWeTalkedAbout: strings.TrimSpace(m.GetWhatWeTalkedAbout()), WhatINeedToDo: strings.TrimSpace(m.GetWhatINeedToDo()), CreatedAt: now, UpdatedAt: now, Version: 1}
	if _, err := c.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		pt.ActionItems = append(pt.ActionItems, item)
		return nil
	}); err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.AddActionItemResponse{ActionItem: actionItemToProto(item)}), nil
}

// ChangeActionItem implements mtm.v1.CareService.ChangeActionItem.
func (s *CareService) ChangeActionItem(ctx context.Context, req *connect.Request[mtmv1.ChangeActionItemRequest]) (*connect.Response[mtmv1.ChangeActionItemResponse], error) {
	c, m := s.cfg, req.Msg
	var item store.ActionItem
	_, err := c.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		for i := range pt.ActionItems {
			a := &pt.ActionItems[i]
			if a.ID != m.GetActionItemId() {
				continue
			}
			if a.Version != m.GetExpectedVersion() {
				return staleVersion("action item", a.Version)
			}
			a.WhatWeTalkedAbout, a.WhatINeedToDo = strings.TrimSpace(m.GetWhatWeTalkedAbout()), strings.TrimSpace(m.GetWhatINeedToDo())
			a.UpdatedAt = c.Now()
			a.Version++
			item = *a
			return nil
		}
		return notFound("action item")
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.ChangeActionItemResponse{ActionItem: actionItemToProto(item)}), nil
}

// SetActionPlanNotes implements mtm.v1.CareService.SetActionPlanNotes.
func (s *CareService) SetActionPlanNotes(ctx context.Context, req *connect.Request[mtmv1.SetActionPlanNotesRequest]) (*connect.Response[mtmv1.SetActionPlanNotesResponse], error) {
	m := req.Msg
	pt, err := s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		pt.FollowUpPlan, pt.Questions = strings.TrimSpace(m.GetFollowUpPlan()), strings.TrimSpace(m.GetQuestions())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SetActionPlanNotesResponse{ActionPlan: actionPlanToProto(pt)}), nil
}

// CreatePharmacist implements mtm.v1.CareService.CreatePharmacist.
func (s *CareService) CreatePharmacist(ctx context.Context, req *connect.Request[mtmv1.CreatePharmacistRequest]) (*connect.Response[mtmv1.CreatePharmacistResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != store.RolePharmacyAdmin {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("only a pharmacy admin may create staff accounts"))
	}
	hash, err := auth.HashPassword(m.GetPassword())
	if err != nil {
		return nil, err
	}
	id, err := auth.NewID("ac")
	if err != nil {
		return nil, err
	}
	role := store.RolePharmacist
	if m.GetAdmin() {
		role = store.RolePharmacyAdmin
	}
	err = c.Store.CreateAccount(ctx, store.Account{
		ID: id, Email: store.NormalizeEmail(m.GetEmail()), DisplayName: strings.TrimSpace(m.GetDisplayName()),
		PasswordHash: hash, Role: role, PharmacyID: p.PharmacyID, CreatedAt: c.Now(), NPI: m.GetNpi(),
	})
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil, connect.NewError(connect.CodeAlreadyExists, errors.New("an account with this e-mail exists"))
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.CreatePharmacistResponse{AccountId: id}), nil
}

// SetPatientContacts implements mtm.v1.CareService.SetPatientContacts.
func (s *CareService) SetPatientContacts(ctx context.Context, req *connect.Request[mtmv1.SetPatientContactsRequest]) (*connect.Response[mtmv1.SetPatientContactsResponse], error) {
	m := req.Msg
	pt, err := s.cfg.updateForCare(ctx, m.GetPatientId(), func(_ auth.Principal, pt *store.Patient) error {
		pt.Address, pt.Phone = strings.TrimSpace(m.GetAddress()), strings.TrimSpace(m.GetPhone())
		pt.EmergencyContact, pt.PrimaryCare = contactFromProto(m.GetEmergencyContact()), contactFromProto(m.GetPrimaryCare())
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.SetPatientContactsResponse{Patient: patientToProto(pt)}), nil
}

// GetPharmacy implements mtm.v1.CareService.GetPharmacy.
func (s *CareService) GetPharmacy(ctx context.Context, _ *connect.Request[mtmv1.GetPharmacyRequest]) (*connect.Response[mtmv1.GetPharmacyResponse], error) {
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	ph, err := s.cfg.Store.GetPharmacy(ctx, p.PharmacyID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.GetPharmacyResponse{Pharmacy: pharmacyToProto(ph)}), nil
}

// UpdatePharmacy implements mtm.v1.CareService.UpdatePharmacy (pharmacy
// admins, for their own pharmacy).
func (s *CareService) UpdatePharmacy(ctx context.Context, req *connect.Request[mtmv1.UpdatePharmacyRequest]) (*connect.Response[mtmv1.UpdatePharmacyResponse], error) {
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	if p.Role != store.RolePharmacyAdmin {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("only a pharmacy admin may change the pharmacy's details"))
	}
	m := req.Msg
	ph, err := s.cfg.Store.UpdatePharmacy(ctx, p.PharmacyID, func(ph *store.Pharmacy) error {
		ph.Name, ph.Phone, ph.TTY = strings.TrimSpace(m.GetName()), strings.TrimSpace(m.GetPhone()), strings.TrimSpace(m.GetTty())
		ph.Hours, ph.Address, ph.NPI, ph.PlanName = strings.TrimSpace(m.GetHours()), strings.TrimSpace(m.GetAddress()), m.GetNpi(), strings.TrimSpace(m.GetPlanName())
		if m.RequireSecondFactor != nil {
			ph.RequireSecondFactor = m.GetRequireSecondFactor()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.UpdatePharmacyResponse{Pharmacy: pharmacyToProto(ph)}), nil
}

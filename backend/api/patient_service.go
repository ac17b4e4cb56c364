package api

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/text/language"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// GetProfile implements mtm.v1.PatientService.GetProfile.
func (s *PatientService) GetProfile(ctx context.Context, req *connect.Request[mtmv1.GetProfileRequest]) (*connect.Response[mtmv1.GetProfileResponse], error) {
	version, unchanged, pt, err := s.cfg.conditionalRead(ctx, req.Msg.GetPatientId(), req.Msg.GetKnownVersion(), scopeAnyGrant, profileKinds)
	if err != nil {
		return nil, err
	}
	if unchanged {
		return connect.NewResponse(&mtmv1.GetProfileResponse{SyncVersion: version, NotModified: unchanged}), nil
	}
	return connect.NewResponse(&mtmv1.GetProfileResponse{Patient: patientToProto(pt), SyncVersion: version}), nil
}

// UpdatePreferences implements mtm.v1.PatientService.UpdatePreferences.
// Only the patient may change their own preferences.
func (s *PatientService) UpdatePreferences(ctx context.Context, req *connect.Request[mtmv1.UpdatePreferencesRequest]) (*connect.Response[mtmv1.UpdatePreferencesResponse], error) {
	m := req.Msg
	if tz := m.GetTimeZone(); tz != "" {
		if err := checkTimeZone("time_zone", tz); err != nil {
			return nil, err
		}
	}
	lang, err := checkLanguage("preferred_language", m.GetPreferredLanguage())
	if err != nil {
		return nil, err
	}
	if q := m.GetQuietHours(); q != nil {
		if err := checkMinute("quiet_hours.start_minute", q.GetStartMinute()); err != nil {
			return nil, err
		}
		if err := checkMinute("quiet_hours.end_minute", q.GetEndMinute()); err != nil {
			return nil, err
		}
	}
	pt, err := s.cfg.updateForPatientSide(ctx, m.GetPatientId(), scopeSelf, func(p auth.Principal, pt *store.Patient) error {
		// Only the profile guards this change: a pharmacist's edit of the
		// PML or the plan since the app read the profile is no conflict.
		if v := m.GetExpectedVersion(); v != 0 && v != pt.CurrentProfileVersion() {
			return staleVersion("profile", pt.CurrentProfileVersion())
		}
		if tz := m.GetTimeZone(); tz != "" {
			pt.TimeZone = tz
		}
		if q := m.GetQuietHours(); q != nil {
			pt.QuietHours = store.QuietHours{StartMinute: int(q.GetStartMinute()), EndMinute: int(q.GetEndMinute())}
		}
		if m.PushNamesMedicine != nil {
			pt.PushNamesMedicine = m.GetPushNamesMedicine()
		}
		if lang != "" {
			pt.PreferredLanguage = lang
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.UpdatePreferencesResponse{Patient: patientToProto(pt)}), nil
}

// GetMedicationList implements mtm.v1.PatientService.GetMedicationList.
func (s *PatientService) GetMedicationList(ctx context.Context, req *connect.Request[mtmv1.GetMedicationListRequest]) (*connect.Response[mtmv1.GetMedicationListResponse], error) {
	version, unchanged, pt, err := s.cfg.conditionalRead(ctx, req.Msg.GetPatientId(), req.Msg.GetKnownVersion(), store.ScopeViewMedicines, medicationListKinds)
	if err != nil {
		return nil, err
	}
	if unchanged {
		return connect.NewResponse(&mtmv1.GetMedicationListResponse{SyncVersion: version, NotModified: unchanged}), nil
	}
	return connect.NewResponse(&mtmv1.GetMedicationListResponse{MedicationList: s.cfg.answers.medicationList(pt), SyncVersion: version}), nil
}

// GetActionPlan implements mtm.v1.PatientService.GetActionPlan.
func (s *PatientService) GetActionPlan(ctx context.Context, req *connect.Request[mtmv1.GetActionPlanRequest]) (*connect.Response[mtmv1.GetActionPlanResponse], error) {
	version, unchanged, pt, err := s.cfg.conditionalRead(ctx, req.Msg.GetPatientId(), req.Msg.GetKnownVersion(), store.ScopeViewPlan, actionPlanKinds)
	if err != nil {
		return nil, err
	}
	if unchanged {
		return connect.NewResponse(&mtmv1.GetActionPlanResponse{SyncVersion: version, NotModified: unchanged}), nil
	}
	return connect.NewResponse(&mtmv1.GetActionPlanResponse{ActionPlan: s.cfg.answers.actionPlan(pt), SyncVersion: version}), nil
}

// RecordActionProgress implements mtm.v1.PatientService.RecordActionProgress.
func (s *PatientService) RecordActionProgress(ctx context.Context, req *connect.Request[mtmv1.RecordActionProgressRequest]) (*connect.Response[mtmv1.RecordActionProgressResponse], error) {
	m := req.Msg
	doneOn, err := s.cfg.pastOrToday("done_on", m.GetDoneOn())
	if err != nil {
		return nil, err
	}
	var item store.ActionItem
	_, err = s.cfg.updateForPatientSide(ctx, m.GetPatientId(), store.ScopeViewPlan, func(p auth.Principal, pt *store.Patient) error {
		for i := range pt.ActionItems {
			a := &pt.ActionItems[i]
			if a.ID != m.GetActionItemId() {
				continue
			}
			now := s.cfg.Now()
			a.Progress = append(a.Progress, store.Progress{WhatIDid: m.GetWhatIDid(), DoneOn: doneOn, RecordedBy: p.Subject, RecordedAt: now})
			a.UpdatedAt = now
			a.Version++
			item = *a
			return nil
		}
		return notFound("action item")
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&mtmv1.RecordActionProgressResponse{ActionItem: actionItemToProto(item)}), nil
}

// checkTimeZone accepts IANA zone names this binary knows (time/tzdata is
// embedded by cmd/mtmd), and refuses "Local" and the empty name.
func checkTimeZone(field, name string) error {
	if name == "Local" || name == "" {
		return invalidField(field, "must be an IANA time zone such as America/Chicago")
	}
	if _, err := time.LoadLocation(name); err != nil {
		return invalidField(field, "unknown IANA time zone")
	}
	return nil
}

// checkLanguage accepts a well-formed BCP 47 tag and returns it in its
// canonical form ("es-us" becomes "es-US"); empty stays empty.
func checkLanguage(field, tag string) (string, error) {
	if tag == "" {
		return "", nil
	}
	t, err := language.Parse(tag)
	if err != nil {
		return "", invalidField(field, "must be a BCP 47 language tag such as en-US or es")
	}
	return t.String(), nil
}

func checkMinute(field string, v int32) error {
	if v < 0 || v > 1439 {
		return invalidField(field, "must be minutes after midnight, 0-1439")
	}
	return nil
}

// pastOrToday parses a date that cannot lie in the future (with a day of
// slack for time zones ahead of the server).
func (c Config) pastOrToday(field, s string) (store.Date, error) {
	d, err := store.ParseDate(s)
	if err != nil {
		return d, invalidField(field, "not a calendar date (YYYY-MM-DD)")
	}
	if store.DateOf(c.Now().UTC()).AddDays(1).Before(d) {
		return d, invalidField(field, "must not be in the future")
	}
	return d, nil
}

// optionalDate parses an optional YYYY-MM-DD field.
func (c Config) optionalDate(field, s string) (store.Date, error) {
	if s == "" {
		return store.Date{}, nil
	}
	return c.pastOrToday(field, s)
}

package api

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Cheap sync for phones: conditional reads (known_version → not_modified)
// and the changes feed (GetChanges), both answered from the patient's
// change log (store.ChangeLog). When nothing changed, the patient's own
// app gets its answer from the log's head alone, without the record.

// RecordNotifier hears of the pharmacy's writes to patients' records, to
// wake the patient side's apps with a silent push (notifications/refresh).
type RecordNotifier interface {
	// RecordChanged is called after each write by staff, with the
	// change-log position of store.PushedKinds read before it. It must
	// return at once.
	RecordChanged(ctx context.Context, patientID string, since int64)
}

// beforeCareWrite reads where the patient's change log stands before a
// pharmacist's write, when a RecordNotifier will want to know; notify is
// false without a notifier or when the position cannot be read (the push
// is a hint: the write goes on).
func (c Config) beforeCareWrite(ctx context.Context, patientID string) (since int64, notify bool) {
	if c.RecordNotifier == nil {
		return 0, false
	}
	pv, err := c.Store.PatientParts(ctx, patientID)
	if err != nil {
		return 0, false
	}
	return pv.Latest(store.PushedKinds...), true
}

// The change kinds each conditional read returns.
var (
	profileKinds        = []store.ChangeKind{store.ChangeProfile}
	medicationListKinds = []store.ChangeKind{store.ChangeMedication, store.ChangeAllergy, store.ChangeFill, store.ChangePMLNotes}
	actionPlanKinds     = []store.ChangeKind{store.ChangeActionItem, store.ChangePlanNotes}
)

// syncVersion is the version an app holds for the part of the record that
// kinds cover: it changes whenever one of them changes. It is the one
// place the sync calls turn the change log into a version (1 before the
// first logged change, so 0 stays "no version").
func syncVersion(pv store.PartVersions, kinds []store.ChangeKind) int64 {
	return pv.Latest(kinds...) + 1
}

// kindScope is the caregiver scope needed to see changes of kind.
func kindScope(k store.ChangeKind) store.Scope {
	switch k {
	case store.ChangeProfile:
		return scopeAnyGrant
	case store.ChangeActionItem, store.ChangePlanNotes:
		return store.ScopeViewPlan
	case store.ChangeThread:
		return store.ScopeMessage
	default: // PML rows, allergies, fills, notes, dose schedules
		return store.ScopeViewMedicines
	}
}

// isSelf reports whether the caller is the patient patientID.
func isSelf(p auth.Principal, patientID string) bool {
	return p.Role == store.RolePatient && p.Subject == patientID
}

// partsForPatientSide reads the head of the patient's change log for a
// patient-side caller allowed scope. The patient's own call reads no
// record; anyone else's is checked on the record, which is returned (nil
// for the patient). The head is read before the record: a change in
// between leaves the head older than the record, never newer, so a
// version handed out never claims content the caller did not get.
func (c Config) partsForPatientSide(ctx context.Context, patientID string, scope store.Scope) (auth.Principal, store.PartVersions, *store.Patient, error) {
	p, err := patientSide(ctx)
	if err != nil {
		return p, store.PartVersions{}, nil, err
	}
	pv, err := c.Store.PatientParts(ctx, patientID)
	if errors.Is(err, store.ErrNotFound) {
		return p, store.PartVersions{}, nil, errPatientNotFound
	}
	if err != nil {
		return p, store.PartVersions{}, nil, err
	}
	if isSelf(p, patientID) {
		audit.Touch(ctx, patientID, "")
		audit.Granted(ctx)
		return p, pv, nil, nil
	}
	_, rec, err := c.loadForPatientSide(ctx, patientID, scope)
	if err != nil {
		return p, store.PartVersions{}, nil, err
	}
	return p, pv, &rec, nil
}

// conditionalRead is the common part of the three conditional reads: it
// returns the part's current sync version, whether the app's known
// version is still current, and the record when it is not (or when the
// caller's access was checked on it).
func (c Config) conditionalRead(ctx context.Context, patientID string, known int64, scope store.Scope, kinds []store.ChangeKind) (int64, bool, store.Patient, error) {
	if known == 0 {
		// The app holds no version: the record is needed whatever the log
		// says, so both are read at once (one round trip on Redis).
		_, may, err := c.patientSideAccess(ctx, scope)
		if err != nil {
			return 0, false, store.Patient{}, err
		}
		rec, pv, err := c.Store.PatientWithParts(ctx, patientID)
		if rec, err = admit(ctx, rec, err, may); err != nil {
			return 0, false, store.Patient{}, err
		}
		return syncVersion(pv, kinds), false, rec, nil
	}
	_, pv, pt, err := c.partsForPatientSide(ctx, patientID, scope)
	if err != nil {
		return 0, false, store.Patient{}, err
	}
	version := syncVersion(pv, kinds)
	if known != 0 && known == version {
		return version, true, store.Patient{}, nil
	}
	if pt != nil {
		return version, false, *pt, nil
	}
	// The log head was read first: a change in between makes the
	// version older than the record, so the app reads again next time.
	_, rec, err := c.loadForPatientSide(ctx, patientID, scope)
	return version, false, rec, err
}

// defaultChangesPage is how many log entries GetChanges reads when the
// request does not say.
const defaultChangesPage = 100

// changesPage reads up to limit entries of the patient's change log after
// the cursor after (none when after < 0: only the head is read) for a
// patient-side caller. The patient's own call reads the log once: the
// read that finds the entries also finds the patient and the head (one
// round trip on Redis, one transaction on bbolt). Anyone else's is
// checked on the record first (partsForPatientSide), which is returned
// (nil for the patient). store.ErrChangesTrimmed comes back as is, after
// the caller's access was checked.
func (s *PatientService) changesPage(ctx context.Context, patientID string, after int64, limit int) (auth.Principal, []store.Change, store.PartVersions, *store.Patient, error) {
	if after >= 0 {
		p, err := patientSide(ctx)
		if err != nil {
			return p, nil, store.PartVersions{}, nil, err
		}
		if isSelf(p, patientID) {
			cs, pv, err := s.cfg.Store.PatientChanges(ctx, patientID, after, limit)
			if errors.Is(err, store.ErrNotFound) {
				return p, nil, store.PartVersions{}, nil, errPatientNotFound
			}
			if err == nil || errors.Is(err, store.ErrChangesTrimmed) {
				audit.Touch(ctx, patientID, "")
				audit.Granted(ctx)
			}
			return p, cs, pv, nil, err
		}
	}
	p, pv, pt, err := s.cfg.partsForPatientSide(ctx, patientID, scopeAnyGrant)
	if err != nil || after < 0 {
		return p, nil, pv, pt, err
	}
	cs, pv, err := s.cfg.Store.PatientChanges(ctx, patientID, after, limit)
	return p, cs, pv, pt, err
}

// GetChanges implements mtm.v1.PatientService.GetChanges.
func (s *PatientService) GetChanges(ctx context.Context, req *connect.Request[mtmv1.GetChangesRequest]) (*connect.Response[mtmv1.GetChangesResponse], error) {
	m := req.Msg
	after := int64(-1)
	if m.GetCursor() != "" {
		n, err := strconv.ParseInt(m.GetCursor(), 10, 64)
		if err != nil {
			return nil, invalidField("cursor", "must be a next_cursor this call returned")
		}
		after = n
	}
	limit := int(cmp.Or(m.GetPageSize(), defaultChangesPage))
	p, cs, pv, pt, err := s.changesPage(ctx, m.GetPatientId(), after, limit+1)
	reload := func(pv store.PartVersions) (*connect.Response[mtmv1.GetChangesResponse], error) {
		return connect.NewResponse(&mtmv1.GetChangesResponse{
			ReloadRequired: true, NextCursor: strconv.FormatInt(pv.Head, 10), Versions: syncVersions(pv),
		}), nil
	}
	if err == nil && after < 0 {
		return reload(pv)
	}
	if errors.Is(err, store.ErrChangesTrimmed) {
		if pv, err = s.cfg.Store.PatientParts(ctx, m.GetPatientId()); err != nil {
			return nil, err
		}
		return reload(pv)
	}
	if err != nil {
		return nil, err
	}
	out := &mtmv1.GetChangesResponse{NextCursor: strconv.FormatInt(after, 10)}
	if len(cs) > limit {
		cs, out.HasMore = cs[:limit], true
	} else {
		out.Versions = syncVersions(pv)
	}
	if len(cs) > 0 {
		out.NextCursor = strconv.FormatInt(cs[len(cs)-1].Seq, 10)
	}
	// Each item once, at its latest change.
	type item struct {
		kind store.ChangeKind
		id   string
	}
	last := map[item]int64{}
	for _, c := range cs {
		last[item{c.Kind, c.ItemID}] = c.Seq
	}
	cs = slices.DeleteFunc(cs, func(c store.Change) bool { return last[item{c.Kind, c.ItemID}] != c.Seq })
	// The items as they are now: the record is read after the log (a
	// record read earlier, for a caregiver's access check, may predate
	// changes the page names).
	if pt == nil && slices.ContainsFunc(cs, func(c store.Change) bool { return c.Kind != store.ChangeThread }) ||
		pt != nil && len(cs) > 0 {
		_, rec, err := s.cfg.loadForPatientSide(ctx, m.GetPatientId(), scopeAnyGrant)
		if err != nil {
			return nil, err
		}
		pt = &rec
	}
	now := s.cfg.Now()
	for _, c := range cs {
		if !isSelf(p, m.GetPatientId()) && !mayActFor(p, *pt, kindScope(c.Kind), now) {
			continue
		}
		rc, err := s.recordChange(ctx, p, m.GetPatientId(), pt, c)
		if err != nil {
			return nil, err
		}
		if rc != nil {
			out.Changes = append(out.Changes, rc)
		}
	}
	return connect.NewResponse(out), nil
}

func syncVersions(pv store.PartVersions) *mtmv1.SyncVersions {
	return &mtmv1.SyncVersions{
		Profile:        syncVersion(pv, profileKinds),
		MedicationList: syncVersion(pv, medicationListKinds),
		ActionPlan:     syncVersion(pv, actionPlanKinds),
	}
}

// recordChange is the item c names as it is now in pt (threads are read
// from the store), or its removal; nil for a kind this server does not
// know (a newer server wrote the log).
func (s *PatientService) recordChange(ctx context.Context, p auth.Principal, patientID string, pt *store.Patient, c store.Change) (*mtmv1.RecordChange, error) {
	rc := &mtmv1.RecordChange{Kind: string(c.Kind), Id: c.ItemID}
	switch c.Kind {
	case store.ChangeProfile:
		rc.Item = &mtmv1.RecordChange_Profile{Profile: patientToProto(*pt)}
	case store.ChangePMLNotes:
		rc.Item = &mtmv1.RecordChange_PmlNotes{PmlNotes: &mtmv1.PersonalMedicationList{PatientId: pt.ID, OtherInformation: pt.OtherInformation}}
	case store.ChangePlanNotes:
		rc.Item = &mtmv1.RecordChange_PlanNotes{PlanNotes: &mtmv1.MedicationActionPlan{PatientId: pt.ID, FollowUpPlan: pt.FollowUpPlan, Questions: pt.Questions}}
	case store.ChangeMedication:
		if i := slices.IndexFunc(pt.Medications, func(x store.Medication) bool { return x.ID == c.ItemID }); i >= 0 {
			rc.Item = &mtmv1.RecordChange_Medication{Medication: medicationToProto(pt.Medications[i])}
		}
	case store.ChangeAllergy:
		if i := slices.IndexFunc(pt.Allergies, func(x store.Allergy) bool { return x.ID == c.ItemID }); i >= 0 {
			rc.Item = &mtmv1.RecordChange_Allergy{Allergy: allergyToProto(pt.Allergies[i])}
		}
	case store.ChangeFill:
		if i := slices.IndexFunc(pt.Fills, func(x store.Fill) bool { return x.ID == c.ItemID }); i >= 0 {
			rc.Item = &mtmv1.RecordChange_Fill{Fill: fillToProto(pt.Fills[i])}
		}
	case store.ChangeActionItem:
		if i := slices.IndexFunc(pt.ActionItems, func(x store.ActionItem) bool { return x.ID == c.ItemID }); i >= 0 {
			rc.Item = &mtmv1.RecordChange_ActionItem{ActionItem: actionItemToProto(pt.ActionItems[i])}
		}
	case store.ChangeDoseSchedule:
		if i := slices.IndexFunc(pt.DoseSchedules, func(x store.DoseSchedule) bool { return x.ID == c.ItemID }); i >= 0 {
			rc.Item = &mtmv1.RecordChange_DoseSchedule{DoseSchedule: doseScheduleToProto(pt.DoseSchedules[i])}
		}
	case store.ChangeThread:
		t, err := s.cfg.Store.GetThread(ctx, c.ItemID)
		if err == nil && t.PatientID == patientID {
			ms := &MessagingService{cfg: s.cfg, escalateAfter: cmp.Or(s.cfg.EscalateAfter, DefaultEscalateAfter)}
			rc.Item = &mtmv1.RecordChange_Thread{Thread: ms.threadToProto(t, p.Subject)}
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	default:
		return nil, nil
	}
	rc.Removed = rc.Item == nil
	return rc, nil
}

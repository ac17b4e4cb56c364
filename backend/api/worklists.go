package api

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/clinical"
	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// Pharmacy work lists (CMR due, below 80% PDC, overdue follow-ups) are
// range queries over the store's index (store.Worklists): every write of a
// record stores the days from which the patient belongs on each list
// (clinical.WorklistDates, computed in update), so a list reads only the
// patients whose day has come, however many patients the pharmacy has.
//
// A list re-checks each candidate against its record as of now. When the
// stored dates differ from what clinical computes now (a record written
// before the index existed, by a path that does not compute them, or whose
// date moved as days passed: a measurement year that ended, a PDC that rose
// above the threshold and will fall again), the list writes the new dates
// back (SetWorklistDates), so each stale entry is paid for once. Only the
// list's own date is compared (the others cost more to compute); a heal
// rewrites all three.

// maxWorklistExamined bounds the index entries one list call examines
// beyond its page size (stale ones it skips); the caller continues with
// the page token.
const maxWorklistExamined = 1000

// worklistDates sets the record's work-list dates as of now; update calls
// it on every write.
func (c Config) worklistDates(pt *store.Patient) {
	pt.Worklist = clinical.WorklistDates(*pt, c.Now())
}

// worklistToken encodes a list position as a page token.
func worklistToken(cur store.WorklistCursor) string {
	if cur.Due.IsZero() {
		return ""
	}
	return cur.Due.String() + "~" + cur.PatientID
}

func parseWorklistToken(token string) (store.WorklistCursor, error) {
	if token == "" {
		return store.WorklistCursor{}, nil
	}
	day, id, ok := strings.Cut(token, "~")
	d, err := store.ParseDate(day)
	if !ok || err != nil || id == "" {
		return store.WorklistCursor{}, invalidField("page_token", "not a page token of this list")
	}
	return store.WorklistCursor{Due: d, PatientID: id}, nil
}

// listed is a patient on a work-list page with what the list's check
// found in their record (the figures the answer shows).
type listed[T any] struct {
	pt  store.Patient
	got T
}

// worklist returns up to size patients of the pharmacy on list l whose day
// is on or before through, in index order, starting after the page token,
// keeping those check accepts. check computes, from the record as of now,
// the list's date (clinical.WorklistDate), what the answer needs of the
// record (got) and whether to keep it; a record's date is healed when it
// differs from the stored one. next is the token to continue with, "" at
// the end. now is the instant the call reads the records as of.
func worklist[T any](ctx context.Context, c Config, now time.Time, pharmacyID string, l store.Worklist, through store.Date, token string, size int,
	check func(store.Patient) (due store.Date, got T, keep bool)) (out []listed[T], next string, err error) {
	cur, err := parseWorklistToken(token)
	if err != nil {
		return nil, "", err
	}
	for examined := 0; len(out) < size; {
		batch := size - len(out)
		page, err := c.Store.ListWorklist(ctx, pharmacyID, l, through, cur, batch)
		if err != nil {
			return nil, "", err
		}
		for _, e := range page {
			cur = store.WorklistCursor{Due: e.Due, PatientID: e.Patient.ID}
			pt := e.Patient // shared with the store's cache: read only (store.Worklists)
			due, got, keep := check(pt)
			if due != pt.Worklist.Get(l) {
				want := clinical.WorklistDates(pt, now)
				err := c.Store.SetWorklistDates(ctx, pt.ID, pt.Version, want)
				if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
					c.Logger.WarnContext(ctx, "work-list dates not healed", slog.String("list", string(l)), slog.String("error", err.Error()))
				}
				pt.Worklist = want
				if d := want.Get(l); d.IsZero() || through.Before(d) {
					continue
				}
			}
			if keep {
				out = append(out, listed[T]{pt, got})
			}
		}
		examined += len(page)
		if len(page) < batch {
			return out, "", nil
		}
		if examined >= size+maxWorklistExamined {
			break
		}
	}
	return out, worklistToken(cur), nil
}

// ListPatientsDueForCmr implements mtm.v1.CareService.ListPatientsDueForCmr
// over the caller's own pharmacy, from the work-list index.
func (s *CareService) ListPatientsDueForCmr(ctx context.Context, req *connect.Request[mtmv1.ListPatientsDueForCmrRequest]) (*connect.Response[mtmv1.ListPatientsDueForCmrResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	now := c.Now()
	dueBy := store.DateOf(now.UTC())
	if m.GetDueBy() != "" {
		if dueBy, err = store.ParseDate(m.GetDueBy()); err != nil {
			return nil, invalidField("due_by", "not a calendar date (YYYY-MM-DD)")
		}
	}
	pts, next, err := worklist(ctx, c, now, p.PharmacyID, store.WorklistCMRDue, dueBy, m.GetPageToken(), pageSize(m.GetPageSize()),
		func(pt store.Patient) (store.Date, struct{}, bool) {
			return clinical.WorklistDate(pt, now, store.WorklistCMRDue), struct{}{}, true
		})
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListPatientsDueForCmrResponse{Truncated: next != "", NextPageToken: next}
	for _, e := range pts {
		pt := e.pt
		last, _ := clinical.LastCMR(pt.Reviews)
		out.Patients = append(out.Patients, &mtmv1.CmrDue{Patient: patientToProto(pt), LastCmrOn: last.String(), NextCmrDueOn: pt.Worklist.CMRDue.String()})
	}
	return connect.NewResponse(out), nil
}

// ListPatientsBelowAdherenceThreshold implements
// mtm.v1.CareService.ListPatientsBelowAdherenceThreshold over the caller's
// own pharmacy, from the work-list index: patients with a current medicine
// whose PQA measure, measurement year to date, is below 80% PDC.
func (s *CareService) ListPatientsBelowAdherenceThreshold(ctx context.Context, req *connect.Request[mtmv1.ListPatientsBelowAdherenceThresholdRequest]) (*connect.Response[mtmv1.ListPatientsBelowAdherenceThresholdResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	if m.GetWindowDays() != 0 {
		return nil, invalidField("window_days", "the pharmacy list measures the PQA measurement year (0); ask GetPatientAdherence for a window")
	}
	now := c.Now()
	// Index days are the patients' own dates: a day ahead of UTC covers
	// every time zone; keep re-checks with the patient's today.
	through := store.DateOf(now.UTC()).AddDays(1)
	type below struct {
		day     store.Date
		results []clinical.Result
	}
	pts, next, err := worklist(ctx, c, now, p.PharmacyID, store.WorklistBelowPDC, through, m.GetPageToken(), pageSize(m.GetPageSize()),
		func(pt store.Patient) (store.Date, below, bool) {
			day := clinical.Today(pt, now)
			rs, since := clinical.BelowThresholdSince(pt, day) // since: clinical.WorklistDate
			return since, below{day, rs}, len(rs) > 0
		})
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListPatientsBelowAdherenceThresholdResponse{Truncated: next != "", NextPageToken: next}
	for _, e := range pts {
		pt, day := e.pt, e.got.day
		pa := &mtmv1.PatientAdherence{Patient: patientToProto(pt), BelowSince: pt.Worklist.BelowPDC.String()}
		for _, r := range e.got.results {
			for _, id := range r.MedicationIDs {
				if isActive(pt, id) { // a stopped member of a class measure that goes on
					pa.Medications = append(pa.Medications, adherenceToProto(id, r, clinical.MeasurementYear(day)))
				}
			}
		}
		out.Patients = append(out.Patients, pa)
	}
	return connect.NewResponse(out), nil
}

// ListOverdueFollowUps implements mtm.v1.CareService.ListOverdueFollowUps
// over the caller's own pharmacy, from the work-list index.
func (s *CareService) ListOverdueFollowUps(ctx context.Context, req *connect.Request[mtmv1.ListOverdueFollowUpsRequest]) (*connect.Response[mtmv1.ListOverdueFollowUpsResponse], error) {
	c, m := s.cfg, req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	now := c.Now()
	through := store.DateOf(now.UTC()).AddDays(1) // see ListPatientsBelowAdherenceThreshold
	pts, next, err := worklist(ctx, c, now, p.PharmacyID, store.WorklistFollowUp, through, m.GetPageToken(), pageSize(m.GetPageSize()),
		func(pt store.Patient) (store.Date, []store.FollowUp, bool) {
			fus := clinical.OverdueFollowUps(pt, now)
			return clinical.WorklistDate(pt, now, store.WorklistFollowUp), fus, len(fus) > 0
		})
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListOverdueFollowUpsResponse{Truncated: next != "", NextPageToken: next}
	for _, e := range pts {
		pt, fus := e.pt, e.got
		slices.SortStableFunc(fus, func(a, b store.FollowUp) int { return a.DueAt.Compare(b.DueAt) })
		for _, f := range fus {
			out.FollowUps = append(out.FollowUps, &mtmv1.OverdueFollowUp{Patient: patientToProto(pt), FollowUpId: f.ID, DueAt: ts(f.DueAt),
				ActionItemId: f.ActionItemID, ReviewId: f.ReviewID})
		}
	}
	return connect.NewResponse(out), nil
}

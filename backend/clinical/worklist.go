package clinical

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// Today is the patient's calendar date at now, in their time zone (UTC
// when the zone is unknown).
func Today(pt store.Patient, now time.Time) store.Date {
	if loc, err := Location(pt.TimeZone); err == nil {
		now = now.In(loc)
	} else {
		now = now.UTC()
	}
	return store.DateOf(now)
}

// EnrolledOn is the patient's enrollment date, in their time zone.
func EnrolledOn(pt store.Patient) store.Date { return Today(pt, pt.CreatedAt) }

// openEnded stands for the end of a condition that has not ended.
func openEnded(from store.Date) store.Date { return from.AddDays(100 * 366) }

// ConditionsOf turns the record's conditions into what the measures read:
// hospice periods, the earliest ESRD diagnosis, and inpatient and skilled-
// nursing stays. A condition with no end lasts.
func ConditionsOf(cs []store.Condition) Conditions {
	var out Conditions
	for _, c := range cs {
		p := Period{From: c.From, Through: c.Through}
		if p.Through.IsZero() {
			p.Through = openEnded(c.From)
		}
		switch c.Kind {
		case store.ConditionHospice:
			out.Hospice = append(out.Hospice, p)
		case store.ConditionESRD:
			if out.ESRDDiagnosedOn.IsZero() || c.From.Before(out.ESRDDiagnosedOn) {
				out.ESRDDiagnosedOn = c.From
			}
		case store.ConditionInpatient, store.ConditionSNF:
			out.InpatientStays = append(out.InpatientStays, p)
		}
	}
	return out
}

// InputOf is the measures' input for a patient's record over period.
func InputOf(pt store.Patient, period Period) Input {
	return Input{Medications: pt.Medications, Fills: pt.Fills, Period: period, Conditions: ConditionsOf(pt.Conditions)}
}

// BelowThreshold returns the measures, over the measurement year to day,
// that put the patient on the pharmacy's adherence work list: scored, with
// a medicine still taken, and below PDCThreshold.
func BelowThreshold(pt store.Patient, day store.Date) []Result {
	return belowThreshold(pt, day, classify(pt.Medications))
}

// BelowThresholdSince returns BelowThreshold(pt, day) and BelowSince(pt,
// day), classifying the record's medicines once.
func BelowThresholdSince(pt store.Patient, day store.Date) ([]Result, store.Date) {
	classes := classify(pt.Medications)
	return belowThreshold(pt, day, classes), belowSince(pt, day, classes)
}

func belowThreshold(pt store.Patient, day store.Date, classes []Classification) []Result {
	var out []Result
	for _, r := range measures(InputOf(pt, MeasurementYear(day)), classes) {
		if r.Scored() && r.Active && r.Adherence.BelowThreshold() {
			out = append(out, r)
		}
	}
	return out
}

// BelowSince returns, for the adherence work list, the day from which the
// patient counts as below the threshold with the fills recorded so far:
// when they are below on day, the first day of the unbroken run of days
// (in day's measurement year) ending on day on which they are; otherwise
// the first later day of that year on which they will be if nothing is
// filled meanwhile; zero when there is none. The measurement year resets
// on 1 January, so a date never crosses into the next year.
func BelowSince(pt store.Patient, day store.Date) store.Date {
	return belowSince(pt, day, classify(pt.Medications))
}

func belowSince(pt store.Patient, day store.Date, classes []Classification) store.Date {
	jan1 := store.Date{Year: day.Year, Month: time.January, Day: 1}
	below := belowDays(pt, Period{From: jan1, Through: store.Date{Year: day.Year, Month: time.December, Day: 31}}, classes)
	i := daysBetween(jan1, day)
	if below[i] {
		for i > 0 && below[i-1] {
			i--
		}
		return jan1.AddDays(i)
	}
	for ; i < len(below); i++ {
		if below[i] {
			return jan1.AddDays(i)
		}
	}
	return store.Date{}
}

// belowDays reports, for each day d of year (a Period within one calendar
// year from 1 January), whether BelowThreshold(pt, d) is not empty. It
// gives the answer of Measures over MeasurementYear(d) for every d at the
// cost of about one call: the days a fill covers up to d do not depend on
// later fills, so one coverage per measure serves every d.
func belowDays(pt store.Patient, year Period, classes []Classification) []bool {
	out := make([]bool, year.Days())
	cond := ConditionsOf(pt.Conditions)
	byID := make(map[string]int, len(pt.Medications))
	for i, m := range pt.Medications {
		byID[m.ID] = i
	}
	// The first day from which insulin and sacubitril/valsartan exclude
	// (taken or filled in the period so far); zero: never.
	var insulinFrom, sacubitrilFrom store.Date
	excludeFrom := func(at *store.Date, d store.Date) {
		if at.IsZero() || d.Before(*at) {
			*at = d
		}
	}
	for i, m := range pt.Medications {
		if !m.Active() && m.StoppedOn.Before(year.From) {
			continue
		}
		start := year.From
		if year.From.Before(m.StartedOn) {
			start = m.StartedOn
		}
		if classes[i].Insulin {
			excludeFrom(&insulinFrom, start)
		}
		if classes[i].Sacubitril {
			excludeFrom(&sacubitrilFrom, start)
		}
	}
	type group struct {
		measure Measure
		active  bool
		fills   []targetFill
	}
	groups := map[string]*group{}
	for _, f := range pt.Fills {
		i, ok := byID[f.MedicationID]
		if !ok || f.DaysSupply <= 0 || !year.Contains(f.FilledOn) {
			continue
		}
		c, m := classes[i], pt.Medications[i]
		if c.Insulin {
			excludeFrom(&insulinFrom, f.FilledOn)
		}
		if c.Sacubitril {
			excludeFrom(&sacubitrilFrom, f.FilledOn)
		}
		key, target := string(c.Measure), c.Target
		if c.Measure == MeasurePerMedicine {
			key, target = "med:"+m.ID, m.ID
		}
		g := groups[key]
		if g == nil {
			g = &group{measure: c.Measure}
			groups[key] = g
		}
		g.fills = append(g.fills, targetFill{target: target, on: f.FilledOn, days: f.DaysSupply})
	}
	for i, m := range pt.Medications {
		key := string(classes[i].Measure)
		if classes[i].Measure == MeasurePerMedicine {
			key = "med:" + m.ID
		}
		if g := groups[key]; g != nil && m.Active() {
			g.active = true
		}
	}
	// The first day hospice and ESRD exclude: the first day of the year
	// that a hospice period reaches, the diagnosis of ESRD.
	var hospiceFrom store.Date
	for _, h := range cond.Hospice {
		if !h.Through.Before(year.From) && !year.Through.Before(h.From) {
			excludeFrom(&hospiceFrom, maxDate(h.From, year.From))
		}
	}
	for _, g := range groups {
		if !g.active {
			continue
		}
		var dates []store.Date
		for _, f := range g.fills {
			dates = append(dates, f.on)
		}
		slices.SortFunc(dates, func(a, b store.Date) int { return a.Time().Compare(b.Time()) })
		dates = slices.Compact(dates)
		if len(dates) < MinFillDates {
			continue
		}
		ipsd := dates[0]
		n := daysBetween(ipsd, year.Through) + 1
		inpatient := inpatientDays(ipsd, n, cond)
		covered := coverage(g.fills, ipsd, n, inpatient)
		// Measured from the second fill date and MinTreatmentDays after
		// the IPSD on.
		first := maxDate(dates[1], ipsd.AddDays(MinTreatmentDays))
		// Offsets from the IPSD of the first day measured and of the first
		// day each exclusion applies (n: never).
		from := func(at store.Date) int {
			if at.IsZero() {
				return n
			}
			return max(0, daysBetween(ipsd, at))
		}
		measured, excludedFrom := from(first), min(from(hospiceFrom), from(cond.ESRDDiagnosedOn))
		if g.measure == MeasureDiabetes {
			excludedFrom = min(excludedFrom, from(insulinFrom))
		}
		if g.measure == MeasureRASA {
			excludedFrom = min(excludedFrom, from(sacubitrilFrom))
		}
		offset := daysBetween(year.From, ipsd)
		days, cov := 0, 0
		for k := range min(n, excludedFrom) {
			if !inpatient[k] {
				days++
				if covered[k] {
					cov++
				}
			}
			if k >= measured && (days == 0 || float64(cov)/float64(days) < PDCThreshold) {
				out[offset+k] = true
			}
		}
	}
	return out
}

func maxDate(a, b store.Date) store.Date {
	if a.Before(b) {
		return b
	}
	return a
}

// FollowUpDone reports whether a follow-up has been done: a review (CMR or
// TMR) other than the one that set it is dated after the day it was
// scheduled. The record has no other "done" mark for follow-ups.
func FollowUpDone(pt store.Patient, f store.FollowUp) bool {
	scheduled := Today(pt, f.CreatedAt)
	for _, r := range pt.Reviews {
		if r.ID != f.ReviewID && scheduled.Before(r.ReviewedOn) {
			return true
		}
	}
	return false
}

// OverdueFollowUps returns the follow-ups not done whose time has come.
func OverdueFollowUps(pt store.Patient, now time.Time) []store.FollowUp {
	var out []store.FollowUp
	for _, f := range pt.FollowUps {
		if !f.DueAt.After(now) && !FollowUpDone(pt, f) {
			out = append(out, f)
		}
	}
	return out
}

// WorklistDates computes the days from which the patient belongs on each
// pharmacy work list (store.WorklistDates), as of now: the next CMR's due
// day; BelowSince the patient's today; the day, in the patient's time
// zone, the earliest follow-up not done is due.
func WorklistDates(pt store.Patient, now time.Time) store.WorklistDates {
	return store.WorklistDates{
		CMRDue:   WorklistDate(pt, now, store.WorklistCMRDue),
		BelowPDC: WorklistDate(pt, now, store.WorklistBelowPDC),
		FollowUp: WorklistDate(pt, now, store.WorklistFollowUp),
	}
}

// WorklistDate is the date of one list of WorklistDates.
func WorklistDate(pt store.Patient, now time.Time, l store.Worklist) store.Date {
	switch l {
	case store.WorklistCMRDue:
		return NextCMRDue(pt.Reviews, EnrolledOn(pt))
	case store.WorklistBelowPDC:
		return BelowSince(pt, Today(pt, now))
	case store.WorklistFollowUp:
		var first time.Time
		for _, f := range pt.FollowUps {
			if !FollowUpDone(pt, f) && (first.IsZero() || f.DueAt.Before(first)) {
				first = f.DueAt
			}
		}
		if !first.IsZero() {
			return Today(pt, first)
		}
	}
	return store.Date{}
}

// Reindexer is what Reindex needs of the store.
type Reindexer interface {
	ListPatients(ctx context.Context, pharmacyID, after string, limit int) ([]store.Patient, error)
	SetWorklistDates(ctx context.Context, patientID string, version int64, dates store.WorklistDates) error
	ReindexPatient(ctx context.Context, patientID string) error
}

// Reindex recomputes the work-list dates of every patient of a pharmacy as
// of now and rewrites their index entries (mtmctl reindex): after an
// upgrade that introduced or changed the index, or to restore entries a
// Redis write lost. It reports how many patients it visited and how many
// of their dates it changed. A patient written meanwhile is left as that
// write left it (with its own dates).
func Reindex(ctx context.Context, st Reindexer, pharmacyID string, now time.Time) (visited, changed int, err error) {
	const page = 200
	after := ""
	for {
		pts, err := st.ListPatients(ctx, pharmacyID, after, page)
		if err != nil {
			return visited, changed, err
		}
		for _, pt := range pts {
			after = pt.ID
			visited++
			if want := WorklistDates(pt, now); want != pt.Worklist {
				if err := st.SetWorklistDates(ctx, pt.ID, pt.Version, want); err != nil && !errors.Is(err, store.ErrConflict) {
					return visited, changed, err
				}
				changed++
			}
			if err := st.ReindexPatient(ctx, pt.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return visited, changed, err
			}
		}
		if len(pts) < page {
			return visited, changed, nil
		}
	}
}

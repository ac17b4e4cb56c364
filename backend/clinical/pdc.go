package clinical

import (
	"slices"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// PDCThreshold is the usual adherence threshold: a Proportion of Days
// Covered below it counts as non-adherent (PQA measures use 80%).
const PDCThreshold = 0.80

// Rules of the PQA PDC measures.
const (
	// MinFillDates is how many fills, on different dates of service, a
	// patient needs in the measurement period to be measured.
	MinFillDates = 2
	// MinTreatmentDays is how many days the index prescription start date
	// must lie before the end of the measurement period.
	MinTreatmentDays = 91
)

// Period is a span of calendar days, both ends included.
type Period struct {
	From, Through store.Date
}

// Days is the number of days in the period, 0 when it is empty.
func (p Period) Days() int { return max(0, daysBetween(p.From, p.Through)+1) }

// Contains reports whether d lies in the period.
func (p Period) Contains(d store.Date) bool { return !d.Before(p.From) && !p.Through.Before(d) }

// overlaps reports whether two periods share a day.
func (p Period) overlaps(q Period) bool {
	return !q.Through.Before(p.From) && !p.Through.Before(q.From)
}

// MeasurementYear is the PQA measurement period for a day: 1 January of
// its year through that day (the whole calendar year once the day is
// 31 December).
func MeasurementYear(day store.Date) Period {
	return Period{From: store.Date{Year: day.Year, Month: time.January, Day: 1}, Through: day}
}

// Window is the period of n days ending on day (n ≥ 1).
func Window(day store.Date, n int) Period { return Period{From: day.AddDays(-n + 1), Through: day} }

// Conditions is what PQA's measures use besides fills. The store keeps none
// of it yet (see the README); callers pass what they know.
type Conditions struct {
	// Hospice lists the periods of hospice care; a patient in hospice at any
	// time of the measurement period is excluded from every measure.
	Hospice []Period
	// ESRDDiagnosedOn is the date end-stage renal disease was diagnosed,
	// zero when never; a patient with ESRD on or before the end of the
	// measurement period is excluded from every measure.
	ESRDDiagnosedOn store.Date
	// InpatientStays are hospital or skilled-nursing stays: their days are
	// taken out of the period (medicines are supplied by the facility), and
	// supply on hand when a stay begins is carried past its end.
	InpatientStays []Period
}

// Input is one patient's record as the measures read it.
type Input struct {
	Medications []store.Medication
	Fills       []store.Fill
	// Period is the measurement period: MeasurementYear, or a Window.
	Period Period
	Conditions
}

// Status says whether a measure scored the patient, and if not, why.
type Status string

// Statuses. Only StatusScored carries an Adherence.
const (
	StatusScored Status = "scored"
	// StatusFewFills: fewer than MinFillDates fills on different dates.
	StatusFewFills Status = "fewer than two fills on different dates"
	// StatusShortTreatment: the first fill is less than MinTreatmentDays
	// before the end of the period.
	StatusShortTreatment Status = "first fill less than 91 days before the end of the period"
	StatusHospice        Status = "excluded: hospice"
	StatusESRD           Status = "excluded: end-stage renal disease"
	// StatusInsulin excludes insulin users from PDC-DR.
	StatusInsulin Status = "excluded: insulin"
	// StatusSacubitril excludes sacubitril/valsartan users from PDC-RASA.
	StatusSacubitril Status = "excluded: sacubitril/valsartan"
)

// Adherence is a Proportion of Days Covered over a treatment period.
type Adherence struct {
	// From is the index prescription start date (the first fill in the
	// measurement period); Through is the end of the period.
	From, Through store.Date
	// DaysInPeriod is the denominator: the days From..Through less the days
	// spent in an inpatient stay. DaysCovered is the numerator.
	DaysInPeriod int
	DaysCovered  int
}

// PDC is DaysCovered / DaysInPeriod, 0 when the period is empty.
func (a Adherence) PDC() float64 {
	if a.DaysInPeriod <= 0 {
		return 0
	}
	return float64(a.DaysCovered) / float64(a.DaysInPeriod)
}

// BelowThreshold reports whether the PDC is under PDCThreshold.
func (a Adherence) BelowThreshold() bool { return a.PDC() < PDCThreshold }

// Result is one measure for one patient.
type Result struct {
	Measure Measure
	// MedicationIDs are the PML rows the measure pooled (one for a
	// per-medicine PDC), in PML order.
	MedicationIDs []string
	// Active reports whether at least one of them is still taken.
	Active bool
	Status Status
	// Adherence is set when Status is StatusScored.
	Adherence Adherence
}

// Scored reports whether the measure produced a PDC.
func (r Result) Scored() bool { return r.Status == StatusScored }

// Measures computes the PQA Proportion of Days Covered measures of a
// patient over in.Period:
//
//   - PDC-DR, PDC-RASA and PDC-STA pool every medicine of their class (by
//     the shipped value set, see Classify): a day counts as covered when
//     any medicine of the class covers it, so a switch from simvastatin to
//     atorvastatin is not a gap;
//   - every other filled medicine gets a per-medicine PDC by the same
//     rules (MeasurePerMedicine);
//   - only fills dated inside the period count; the index prescription
//     start date (IPSD) is the first of them, and the treatment period runs
//     from it to the end of the period, or to the last day a medicine of
//     the measure was taken when all of them have been stopped (PQA, which
//     reads claims, cannot see a documented stop; a pharmacist can);
//   - a patient is measured only with at least MinFillDates fills on
//     different dates and an IPSD at least MinTreatmentDays before the end
//     of the treatment period; hospice, ESRD, insulin (PDC-DR) and
//     sacubitril/valsartan (PDC-RASA) exclude;
//   - a fill covers FilledOn through FilledOn + DaysSupply − 1; a fill of
//     the same target ingredient made while earlier supply remains —
//     including on the same day — starts the day after that supply runs
//     out; fills of different ingredients of one class cover shared days
//     once, without shifting;
//   - days of an inpatient stay leave the denominator, and supply does not
//     run down during them: it is carried past the stay's end;
//   - supply running past the end of the period is cut off.
//
// Results come class measures first (PDC-DR, PDC-RASA, PDC-STA), then the
// per-medicine ones in PML order; a measure none of whose medicines was
// filled in the period is left out. Fills with no supply or naming no PML
// row are ignored.
func Measures(in Input) []Result {
	if in.Period.Days() == 0 {
		return nil
	}
	return measures(in, classify(in.Medications))
}

// classify classifies each PML row (Classify).
func classify(meds []store.Medication) []Classification {
	classes := make([]Classification, len(meds))
	for i, m := range meds {
		classes[i] = Classify(m.Name, m.RxCUI)
	}
	return classes
}

// measures is Measures with the rows' classifications given.
func measures(in Input, classes []Classification) []Result {
	if in.Period.Days() == 0 {
		return nil
	}
	type group struct {
		result Result
		fills  []targetFill
		end    store.Date // latest stop date, while every medicine is stopped
	}
	var (
		groups            = map[string]*group{}
		order             []string
		insulin, sacubitr bool
	)
	byID := make(map[string]int, len(in.Medications))
	for i, m := range in.Medications {
		byID[m.ID] = i
	}
	keys := make([]string, len(in.Medications)) // the measure each row counts toward
	for i, m := range in.Medications {
		c := classes[i]
		keys[i] = string(c.Measure)
		if c.Measure == MeasurePerMedicine {
			keys[i] = "med:" + m.ID
		}
		takenInPeriod := !in.Period.Through.Before(m.StartedOn) && (m.Active() || !m.StoppedOn.Before(in.Period.From))
		insulin = insulin || c.Insulin && takenInPeriod
		sacubitr = sacubitr || c.Sacubitril && takenInPeriod
	}
	filled := make([]bool, len(in.Medications)) // filled in the period, by byID's index
	for _, f := range in.Fills {
		i, ok := byID[f.MedicationID]
		if !ok || f.DaysSupply <= 0 || !in.Period.Contains(f.FilledOn) {
			continue
		}
		filled[i] = true
		c := classes[i]
		insulin = insulin || c.Insulin
		sacubitr = sacubitr || c.Sacubitril
		key, target := keys[i], c.Target
		if c.Measure == MeasurePerMedicine {
			target = in.Medications[i].ID
		}
		g := groups[key]
		if g == nil {
			g = &group{result: Result{Measure: c.Measure}}
			groups[key] = g
			order = append(order, key)
		}
		g.fills = append(g.fills, targetFill{target: target, on: f.FilledOn, days: f.DaysSupply})
	}
	// Which PML rows each measure pooled, and whether all of them stopped.
	for i, m := range in.Medications {
		g := groups[keys[i]]
		if g == nil {
			continue
		}
		if !filled[byID[m.ID]] && !m.Active() {
			continue // a stopped medicine of the class not filled in the period
		}
		g.result.MedicationIDs = append(g.result.MedicationIDs, m.ID)
		if m.Active() {
			g.result.Active = true
		} else if g.end.Before(m.StoppedOn) {
			g.end = m.StoppedOn
		}
	}
	slices.SortStableFunc(order, func(a, b string) int {
		return measureRank(groups[a].result.Measure) - measureRank(groups[b].result.Measure)
	})

	out := make([]Result, 0, len(order))
	for _, key := range order {
		g := groups[key]
		r := g.result
		through := in.Period.Through
		if !r.Active && !g.end.IsZero() && g.end.Before(through) {
			through = g.end
		}
		r.Status, r.Adherence = score(g.fills, Period{From: in.Period.From, Through: through}, in.Conditions)
		if r.Status == StatusScored {
			switch {
			case r.Measure == MeasureDiabetes && insulin:
				r.Status, r.Adherence = StatusInsulin, Adherence{}
			case r.Measure == MeasureRASA && sacubitr:
				r.Status, r.Adherence = StatusSacubitril, Adherence{}
			}
		}
		out = append(out, r)
	}
	return out
}

// measureRank orders the measures in results.
func measureRank(m Measure) int {
	switch m {
	case MeasureDiabetes:
		return 0
	case MeasureRASA:
		return 1
	case MeasureStatins:
		return 2
	}
	return 3
}

// targetFill is one fill as a measure sees it.
type targetFill struct {
	target string // fills of the same target shift forward when they overlap
	on     store.Date
	days   int
}

// score applies the eligibility rules and the exclusions, then computes the
// PDC of fills (all dated inside period) over period.
func score(fills []targetFill, period Period, cond Conditions) (Status, Adherence) {
	var dates []store.Date
	for _, f := range fills {
		if !period.Through.Before(f.on) {
			dates = append(dates, f.on)
		}
	}
	slices.SortFunc(dates, func(a, b store.Date) int { return a.Time().Compare(b.Time()) })
	if len(slices.Compact(dates)) < MinFillDates {
		return StatusFewFills, Adherence{}
	}
	ipsd := dates[0]
	if daysBetween(ipsd, period.Through) < MinTreatmentDays {
		return StatusShortTreatment, Adherence{}
	}
	for _, h := range cond.Hospice {
		if h.overlaps(period) {
			return StatusHospice, Adherence{}
		}
	}
	if !cond.ESRDDiagnosedOn.IsZero() && !period.Through.Before(cond.ESRDDiagnosedOn) {
		return StatusESRD, Adherence{}
	}

	treatment := Period{From: ipsd, Through: period.Through}
	n := treatment.Days()
	inpatient := inpatientDays(ipsd, n, cond)
	covered := coverage(fills, ipsd, n, inpatient)
	a := Adherence{From: treatment.From, Through: treatment.Through}
	for d := range n {
		if inpatient[d] {
			continue
		}
		a.DaysInPeriod++
		if covered[d] {
			a.DaysCovered++
		}
	}
	return StatusScored, a
}

// inpatientDays marks the days of the n from start spent in an inpatient
// stay.
func inpatientDays(start store.Date, n int, cond Conditions) []bool {
	inpatient := make([]bool, n)
	for _, s := range cond.InpatientStays {
		for d := max(0, daysBetween(start, s.From)); d < n && d <= daysBetween(start, s.Through); d++ {
			inpatient[d] = true
		}
	}
	return inpatient
}

// coverage marks the days of the n from ipsd that fills cover: a fill of a
// target made while earlier supply of that target remains starts the day
// after it runs out; supply does not run down on inpatient days. The days
// covered up to a day do not depend on fills made after it, nor on n.
func coverage(fills []targetFill, ipsd store.Date, n int, inpatient []bool) []bool {
	covered := make([]bool, n)
	sorted := slices.Clone(fills)
	slices.SortStableFunc(sorted, func(a, b targetFill) int { return a.on.Time().Compare(b.on.Time()) })
	next := map[string]int{} // per target: first day (offset from the IPSD) not yet supplied
	for _, f := range sorted {
		day := daysBetween(ipsd, f.on)
		if free, ok := next[f.target]; ok && free > day {
			day = free // overlapping supply of the same target shifts forward
		}
		for left := f.days; left > 0 && day < n; day++ {
			if inpatient[day] {
				continue // the facility supplies the medicine: carried over
			}
			covered[day] = true
			left--
		}
		if day >= n {
			day = n + 1 // past the period: nothing later can be covered
		}
		next[f.target] = day
	}
	return covered
}

// daysBetween is the number of days from a to b (negative when b is before a).
func daysBetween(a, b store.Date) int {
	return int(b.Time().Sub(a.Time()).Hours() / 24)
}

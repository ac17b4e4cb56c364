package clinical

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// rx is a PML row; stopped may be "".
func rx(id, name, stopped string) store.Medication {
	m := store.Medication{ID: id, Name: name, StartedOn: d("2017-06-01")}
	if stopped != "" {
		m.StoppedOn = d(stopped)
	}
	return m
}

func fillOf(medID, on string, days int) store.Fill {
	return store.Fill{MedicationID: medID, FilledOn: d(on), DaysSupply: days}
}

// year2018 is the PQA measurement year of the worked examples, measured on
// its last day: 1 January through 31 December 2018, 365 days.
var year2018 = MeasurementYear(d("2018-12-31"))

// want is what one measure should report: a PDC of covered/days over
// from..through, or a status without a PDC.
type want struct {
	measure       Measure
	meds          []string
	status        Status
	from, through string
	covered, days int
}

func scored(m Measure, meds []string, from, through string, covered, days int) want {
	return want{measure: m, meds: meds, status: StatusScored, from: from, through: through, covered: covered, days: days}
}

func notScored(m Measure, meds []string, s Status) want {
	return want{measure: m, meds: meds, status: s}
}

func checkMeasures(t *testing.T, got []Result, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d measures %+v, want %d", len(got), got, len(wants))
	}
	for i, w := range wants {
		r := got[i]
		if r.Measure != w.measure || !slices.Equal(r.MedicationIDs, w.meds) || r.Status != w.status {
			t.Errorf("measure %d = %s %v %q, want %s %v %q", i, r.Measure, r.MedicationIDs, r.Status, w.measure, w.meds, w.status)
			continue
		}
		if w.status != StatusScored {
			if r.Adherence != (Adherence{}) {
				t.Errorf("%s: not scored but carries %+v", r.Measure, r.Adherence)
			}
			continue
		}
		a := r.Adherence
		if a.From.String() != w.from || a.Through.String() != w.through || a.DaysCovered != w.covered || a.DaysInPeriod != w.days {
			t.Errorf("%s: %s..%s covered %d of %d days (%.1f%%), want %s..%s %d of %d (%.1f%%)", r.Measure,
				a.From, a.Through, a.DaysCovered, a.DaysInPeriod, 100*a.PDC(), w.from, w.through, w.covered, w.days, 100*float64(w.covered)/float64(w.days))
		}
		if below := float64(w.covered)/float64(w.days) < PDCThreshold; a.BelowThreshold() != below {
			t.Errorf("%s: BelowThreshold = %v at PDC %.4f", r.Measure, a.BelowThreshold(), a.PDC())
		}
	}
}

var (
	simva = rx("md_simva", "Simvastatin 40 mg tablet", "")
	atorv = rx("md_atorv", "Atorvastatin 20 mg tablet", "")
	sta   = []string{"md_simva"}
	both  = []string{"md_simva", "md_atorv"}
)

// TestPQAWorkedExamples reconstructs the worked examples PQA publishes with
// its statin measure (PDC-STA, measurement year 2018; the same examples
// accompany PDC-DR with metformin/glipizide). PQA gives each claim's first
// and last day of supply; the comments quote them, and the figures follow
// from them over the treatment period (IPSD through 31 December).
func TestPQAWorkedExamples(t *testing.T) {
	tests := []struct {
		name  string
		meds  []store.Medication
		fills []store.Fill
		want  want
	}{
		{name: "example 1: a switch within the class is pooled",
			// simvastatin 1 Jan ×90 → 1 Jan–31 Mar; atorvastatin 1 Apr ×90 →
			// 1 Apr–29 Jun: 180 of 365 days.
			meds:  []store.Medication{simva, atorv},
			fills: []store.Fill{fillOf("md_simva", "2018-01-01", 90), fillOf("md_atorv", "2018-04-01", 90)},
			want:  scored(MeasureStatins, both, "2018-01-01", "2018-12-31", 180, 365)},
		{name: "example 2: two statins on one date are one date of service: not measured",
			// simvastatin and atorvastatin both 1 Jan ×90, both 1 Jan–31 Mar
			// (different ingredients do not shift).
			meds:  []store.Medication{simva, atorv},
			fills: []store.Fill{fillOf("md_simva", "2018-01-01", 90), fillOf("md_atorv", "2018-01-01", 90)},
			want:  notScored(MeasureStatins, both, StatusFewFills)},
		{name: "example 3: an early refill shifts forward",
			// 25 Mar ×90 → 25 Mar–22 Jun; 5 Jul ×90 → 5 Jul–2 Oct; 25 Sep ×90
			// → 3 Oct–31 Dec. IPSD 25 Mar: 270 of 282 days.
			meds:  []store.Medication{simva},
			fills: []store.Fill{fillOf("md_simva", "2018-03-25", 90), fillOf("md_simva", "2018-07-05", 90), fillOf("md_simva", "2018-09-25", 90)},
			want:  scored(MeasureStatins, sta, "2018-03-25", "2018-12-31", 270, 282)},
		{name: "example 4: shifted supply is cut off at the end of the year",
			// 1 Jan → 1 Jan–31 Mar; 25 Mar → 1 Apr–29 Jun; 5 Jul → 5 Jul–2 Oct;
			// 15 Oct → 15 Oct–31 Dec (78 of its 90 days): 348 of 365.
			meds: []store.Medication{simva},
			fills: []store.Fill{fillOf("md_simva", "2018-01-01", 90), fillOf("md_simva", "2018-03-25", 90),
				fillOf("md_simva", "2018-07-05", 90), fillOf("md_simva", "2018-10-15", 90)},
			want: scored(MeasureStatins, sta, "2018-01-01", "2018-12-31", 348, 365)},
		{name: "example 5: an IPSD less than 91 days before year end is not measured",
			// 4 Oct ×30 → 4 Oct–2 Nov; 1 Nov ×30 → 3 Nov–2 Dec; 15 Dec. The
			// IPSD is 88 days before 31 December.
			meds:  []store.Medication{simva},
			fills: []store.Fill{fillOf("md_simva", "2018-10-04", 30), fillOf("md_simva", "2018-11-01", 30), fillOf("md_simva", "2018-12-15", 30)},
			want:  notScored(MeasureStatins, sta, StatusShortTreatment)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkMeasures(t, Measures(Input{Medications: tt.meds, Fills: tt.fills, Period: year2018}), tt.want)
		})
	}
}

// TestReviewerCases are the three cases of issue 13 where the earlier
// per-medicine PDC disagreed with PQA.
func TestReviewerCases(t *testing.T) {
	t.Run("a single fill is not scored nor flagged", func(t *testing.T) {
		got := Measures(Input{Medications: []store.Medication{atorv, rx("md_apix", "Apixaban 5 mg", "")},
			Fills: []store.Fill{fillOf("md_atorv", "2018-02-01", 30), fillOf("md_apix", "2018-02-01", 90)}, Period: year2018})
		checkMeasures(t, got,
			notScored(MeasureStatins, []string{"md_atorv"}, StatusFewFills),
			notScored(MeasurePerMedicine, []string{"md_apix"}, StatusFewFills))
	})
	t.Run("two 30-day fills on one day: the second shifts (56%, not 42%)", func(t *testing.T) {
		// 1 Jun ×30 twice → 1–30 Jun and 1–30 Jul; 1 Sep ×60 → 1 Sep–30 Oct.
		// IPSD 1 Jun: 120 of 214 days = 56.1%. Collapsing the same-day fill
		// gave 90 of 214 = 42.1%.
		got := Measures(Input{Medications: []store.Medication{atorv}, Period: year2018,
			Fills: []store.Fill{fillOf("md_atorv", "2018-06-01", 30), fillOf("md_atorv", "2018-06-01", 30), fillOf("md_atorv", "2018-09-01", 60)}})
		checkMeasures(t, got, scored(MeasureStatins, []string{"md_atorv"}, "2018-06-01", "2018-12-31", 120, 214))
		if pdc := got[0].Adherence.PDC(); fmt.Sprintf("%.0f%%", 100*pdc) != "56%" {
			t.Errorf("PDC = %.1f%%, want 56%%", 100*pdc)
		}
	})
	t.Run("simvastatin to atorvastatin: the class is pooled (99.7%)", func(t *testing.T) {
		// Simvastatin 1 Jan ×90 → 1 Jan–31 Mar, 1 Apr ×90 → 1 Apr–29 Jun,
		// then stopped; atorvastatin 1 Jul ×90 → 1 Jul–28 Sep, 29 Sep ×90 →
		// 29 Sep–27 Dec, 20 Dec ×30 → shifted to 28 Dec–26 Jan. Only 30 Jun
		// is uncovered: 364 of 365 = 99.7%, not below 80%. Per medicine,
		// simvastatin alone looked non-adherent.
		stopped := rx("md_simva", "Simvastatin 40 mg tablet", "2018-06-30")
		got := Measures(Input{Medications: []store.Medication{stopped, atorv}, Period: year2018, Fills: []store.Fill{
			fillOf("md_simva", "2018-01-01", 90), fillOf("md_simva", "2018-04-01", 90),
			fillOf("md_atorv", "2018-07-01", 90), fillOf("md_atorv", "2018-09-29", 90), fillOf("md_atorv", "2018-12-20", 30)}})
		checkMeasures(t, got, scored(MeasureStatins, both, "2018-01-01", "2018-12-31", 364, 365))
		if pdc := got[0].Adherence.PDC(); fmt.Sprintf("%.1f%%", 100*pdc) != "99.7%" {
			t.Errorf("PDC = %.2f%%, want 99.7%%", 100*pdc)
		}
	})
}

func TestMeasures(t *testing.T) {
	metformin := rx("md_met", "Metformin ER 500 mg", "")
	glipizide := rx("md_glip", "Glipizide 5 mg", "")
	dr := []string{"md_met", "md_glip"}
	lisinopril := rx("md_lis", "Lisinopril 10 mg", "")
	apixaban := rx("md_apix", "Apixaban 5 mg tablet", "")
	twoStatinFills := []store.Fill{fillOf("md_simva", "2018-01-01", 90), fillOf("md_simva", "2018-04-01", 90)}
	tests := []struct {
		name   string
		in     Input
		wants  []want
		period Period
	}{
		{name: "one ingredient on two PML rows (a dose change) shifts like one medicine",
			// 20 mg 1 Jan ×90 → 1 Jan–31 Mar; 40 mg 1 Mar ×90 → 1 Apr–29 Jun.
			in: Input{Medications: []store.Medication{rx("md_s20", "Simvastatin 20 mg", "2018-03-01"), rx("md_s40", "Zocor 40 mg", "")},
				Fills: []store.Fill{fillOf("md_s20", "2018-01-01", 90), fillOf("md_s40", "2018-03-01", 90)}},
			wants: []want{scored(MeasureStatins, []string{"md_s20", "md_s40"}, "2018-01-01", "2018-12-31", 180, 365)}},
		{name: "different ingredients of a class overlap without shifting",
			// simvastatin 1 Jan–31 Mar, atorvastatin 1 Mar–29 May: 1 Jan–29 May.
			in:    Input{Medications: []store.Medication{simva, atorv}, Fills: []store.Fill{fillOf("md_simva", "2018-01-01", 90), fillOf("md_atorv", "2018-03-01", 90)}},
			wants: []want{scored(MeasureStatins, both, "2018-01-01", "2018-12-31", 149, 365)}},
		{name: "a combination product shifts with its statin ingredient",
			// atorvastatin 1 Jan–31 Mar; amlodipine/atorvastatin 1 Mar → 1 Apr–29 Jun.
			in: Input{Medications: []store.Medication{atorv, rx("md_caduet", "Amlodipine and atorvastatin 5 mg/20 mg", "")},
				Fills: []store.Fill{fillOf("md_atorv", "2018-01-01", 90), fillOf("md_caduet", "2018-03-01", 90)}},
			wants: []want{scored(MeasureStatins, []string{"md_atorv", "md_caduet"}, "2018-01-01", "2018-12-31", 180, 365)}},
		{name: "metformin and glipizide pool into PDC-DR",
			in: Input{Medications: []store.Medication{metformin, glipizide},
				Fills: []store.Fill{fillOf("md_met", "2018-01-01", 180), fillOf("md_glip", "2018-07-01", 180)}},
			wants: []want{scored(MeasureDiabetes, dr, "2018-01-01", "2018-12-31", 360, 365)}}, // 1 Jan–29 Jun, 1 Jul–27 Dec
		{name: "insulin on the list excludes the patient from PDC-DR only",
			in: Input{Medications: []store.Medication{metformin, rx("md_ins", "Insulin glargine 100 unit/mL pen", ""), simva},
				Fills: append([]store.Fill{fillOf("md_met", "2018-01-01", 90), fillOf("md_met", "2018-04-01", 90)}, twoStatinFills...)},
			wants: []want{notScored(MeasureDiabetes, []string{"md_met"}, StatusInsulin), scored(MeasureStatins, sta, "2018-01-01", "2018-12-31", 180, 365)}},
		{name: "an insulin stopped before the year does not exclude",
			in: Input{Medications: []store.Medication{metformin, rx("md_ins", "Lantus SoloStar", "2017-12-01")},
				Fills: []store.Fill{fillOf("md_met", "2018-01-01", 90), fillOf("md_met", "2018-04-01", 90)}},
			wants: []want{scored(MeasureDiabetes, []string{"md_met"}, "2018-01-01", "2018-12-31", 180, 365)}},
		{name: "sacubitril/valsartan excludes the patient from PDC-RASA",
			in: Input{Medications: []store.Medication{lisinopril, rx("md_entresto", "Entresto 49 mg-51 mg", "")},
				Fills: []store.Fill{fillOf("md_lis", "2018-01-01", 90), fillOf("md_lis", "2018-04-01", 90)}},
			wants: []want{notScored(MeasureRASA, []string{"md_lis", "md_entresto"}, StatusSacubitril)}},
		{name: "hospice during the year excludes every measure",
			in: Input{Medications: []store.Medication{simva}, Fills: twoStatinFills,
				Conditions: Conditions{Hospice: []Period{{d("2018-11-01"), d("2019-02-01")}}}},
			wants: []want{notScored(MeasureStatins, sta, StatusHospice)}},
		{name: "hospice that ended the year before does not exclude",
			in: Input{Medications: []store.Medication{simva}, Fills: twoStatinFills,
				Conditions: Conditions{Hospice: []Period{{d("2017-01-01"), d("2017-12-31")}}}},
			wants: []want{scored(MeasureStatins, sta, "2018-01-01", "2018-12-31", 180, 365)}},
		{name: "ESRD diagnosed by the end of the period excludes",
			in:    Input{Medications: []store.Medication{simva}, Fills: twoStatinFills, Conditions: Conditions{ESRDDiagnosedOn: d("2018-12-31")}},
			wants: []want{notScored(MeasureStatins, sta, StatusESRD)}},
		{name: "ESRD diagnosed after the period does not exclude",
			in:    Input{Medications: []store.Medication{simva}, Fills: twoStatinFills, Conditions: Conditions{ESRDDiagnosedOn: d("2019-01-02")}},
			wants: []want{scored(MeasureStatins, sta, "2018-01-01", "2018-12-31", 180, 365)}},
		{name: "an inpatient stay leaves the denominator and carries supply past it",
			// 1 Jan ×90: 1–31 Jan, stay 1–10 Feb, then 59 days 11 Feb–10 Apr;
			// 1 Apr ×90 shifts to 11 Apr–9 Jul. 180 of 365 − 10 days.
			in: Input{Medications: []store.Medication{simva}, Fills: twoStatinFills,
				Conditions: Conditions{InpatientStays: []Period{{d("2018-02-01"), d("2018-02-10")}}}},
			wants: []want{scored(MeasureStatins, sta, "2018-01-01", "2018-12-31", 180, 355)}},
		{name: "fills before the measurement year do not count, and the IPSD is the first fill in it",
			in: Input{Medications: []store.Medication{simva},
				Fills: []store.Fill{fillOf("md_simva", "2017-12-01", 90), fillOf("md_simva", "2018-03-01", 30), fillOf("md_simva", "2018-04-01", 30)}},
			wants: []want{scored(MeasureStatins, sta, "2018-03-01", "2018-12-31", 60, 306)}},
		{name: "an IPSD exactly 91 days before the end is measured",
			in: Input{Medications: []store.Medication{simva},
				Fills: []store.Fill{fillOf("md_simva", "2018-10-01", 30), fillOf("md_simva", "2018-10-31", 30)}},
			wants: []want{scored(MeasureStatins, sta, "2018-10-01", "2018-12-31", 60, 92)}},
		{name: "an IPSD 90 days before the end is not",
			in: Input{Medications: []store.Medication{simva},
				Fills: []store.Fill{fillOf("md_simva", "2018-10-02", 30), fillOf("md_simva", "2018-10-31", 30)}},
			wants: []want{notScored(MeasureStatins, sta, StatusShortTreatment)}},
		{name: "a medicine outside the classes gets a per-medicine PDC, after the class measures",
			// Apixaban 1 Jan ×30, 1 Feb ×30, 3 Mar ×30; stopped 30 Jun: 90 of
			// the 181 days 1 Jan–30 Jun.
			in: Input{Medications: []store.Medication{rx("md_apix", "Apixaban 5 mg", "2018-06-30"), lisinopril},
				Fills: []store.Fill{fillOf("md_apix", "2018-01-01", 30), fillOf("md_apix", "2018-02-01", 30), fillOf("md_apix", "2018-03-03", 30),
					fillOf("md_lis", "2018-01-01", 180), fillOf("md_lis", "2018-06-15", 180)}},
			wants: []want{scored(MeasureRASA, []string{"md_lis"}, "2018-01-01", "2018-12-31", 360, 365),
				scored(MeasurePerMedicine, []string{"md_apix"}, "2018-01-01", "2018-06-30", 90, 181)}},
		{name: "a rolling window: fills before it do not count",
			period: Window(d("2018-06-30"), 120), // 3 Mar–30 Jun
			in: Input{Medications: []store.Medication{apixaban},
				Fills: []store.Fill{fillOf("md_apix", "2018-02-20", 30), fillOf("md_apix", "2018-03-10", 30), fillOf("md_apix", "2018-04-09", 30)}},
			wants: []want{scored(MeasurePerMedicine, []string{"md_apix"}, "2018-03-10", "2018-06-30", 60, 113)}},
		{name: "fills after the period, without supply or of no PML row are ignored",
			in: Input{Medications: []store.Medication{apixaban},
				Fills: []store.Fill{fillOf("md_apix", "2018-09-01", 30), fillOf("md_apix", "2018-10-01", 0), fillOf("md_gone", "2018-10-01", 30), fillOf("md_apix", "2019-01-01", 30)}},
			wants: []want{notScored(MeasurePerMedicine, []string{"md_apix"}, StatusFewFills)}},
		{name: "exactly 80% is not below the threshold",
			// 1 Jan ×146, 27 May ×146 → shifted to 27 May–19 Oct: 292 of 365 = 80%.
			in: Input{Medications: []store.Medication{apixaban},
				Fills: []store.Fill{fillOf("md_apix", "2018-01-01", 146), fillOf("md_apix", "2018-05-27", 146)}},
			wants: []want{scored(MeasurePerMedicine, []string{"md_apix"}, "2018-01-01", "2018-12-31", 292, 365)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Period = year2018
			if tt.period != (Period{}) {
				tt.in.Period = tt.period
			}
			checkMeasures(t, Measures(tt.in), tt.wants...)
		})
	}
}

func TestMeasuresNothingToMeasure(t *testing.T) {
	meds := []store.Medication{simva}
	fills := []store.Fill{fillOf("md_simva", "2018-01-01", 90), fillOf("md_simva", "2018-04-01", 90)}
	if got := Measures(Input{Medications: meds, Period: year2018}); len(got) != 0 {
		t.Errorf("no fills: %+v", got)
	}
	if got := Measures(Input{Medications: meds, Fills: fills, Period: Period{From: d("2018-12-31"), Through: d("2018-01-01")}}); len(got) != 0 {
		t.Errorf("empty period: %+v", got)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name, rxcui string
		want        Classification
	}{
		{"Atorvastatin 20 mg tablet", "", Classification{Measure: MeasureStatins, Target: "atorvastatin"}},
		{"LIPITOR 40MG", "", Classification{Measure: MeasureStatins, Target: "atorvastatin"}},
		{"Cholesterol tablet", "83367", Classification{Measure: MeasureStatins, Target: "atorvastatin"}},
		{"Ezetimibe/simvastatin 10-40 mg", "", Classification{Measure: MeasureStatins, Target: "simvastatin"}},
		{"Lisinopril-hydrochlorothiazide 20-12.5 mg", "", Classification{Measure: MeasureRASA, Target: "lisinopril"}},
		{"Sacubitril/valsartan 49-51 mg", "", Classification{Measure: MeasureRASA, Target: "valsartan", Sacubitril: true}},
		{"Janumet (sitagliptin and metformin)", "", Classification{Measure: MeasureDiabetes, Target: "metformin+sitagliptin"}},
		{"Insulin lispro", "", Classification{Measure: MeasurePerMedicine, Insulin: true}},
		{"Tresiba FlexTouch", "", Classification{Measure: MeasurePerMedicine, Insulin: true}},
		{"Apixaban 5 mg", "", Classification{Measure: MeasurePerMedicine}},
		{"Amlodipine 5 mg", "", Classification{Measure: MeasurePerMedicine}},
	}
	for _, tt := range tests {
		if got := Classify(tt.name, tt.rxcui); got != tt.want {
			t.Errorf("Classify(%q, %q) = %+v, want %+v", tt.name, tt.rxcui, got, tt.want)
		}
	}
}

// TestClassifyAgreesWithTheValueSetScan checks the indexed Classify
// against the plain reading of the value set (every entry's RxCUI,
// ingredient and brand names against the row's words) for every name,
// brand and RxCUI of the set, alone, in any case, combined in pairs and
// with the insulins.
func TestClassifyAgreesWithTheValueSetScan(t *testing.T) {
	scan := func(name, rxcui string) Classification {
		words := nameWords(name)
		has := func(w string) bool { return slices.Contains(words, w) }
		var c Classification
		var targets []string
		for _, in := range valueSet {
			hit := rxcui != "" && rxcui == in.RxCUI || has(in.Name)
			for _, b := range in.Brands {
				hit = hit || has(b)
			}
			if !hit {
				continue
			}
			if in.Measure == "" {
				c.Sacubitril = c.Sacubitril || in.Name == "sacubitril"
				continue
			}
			if c.Measure == "" || c.Measure == in.Measure {
				c.Measure = in.Measure
				targets = append(targets, in.Name)
			}
		}
		c.Insulin = has("insulin") || slices.Contains(insulinRxCUIs, rxcui)
		for _, b := range insulinBrands {
			c.Insulin = c.Insulin || has(b)
		}
		if c.Measure == "" {
			c.Measure = MeasurePerMedicine
			return c
		}
		slices.Sort(targets)
		c.Target = strings.Join(slices.Compact(targets), "+")
		return c
	}
	names := []string{"", "apixaban", "insulin", "Amlodipine 5 mg"}
	rxcuis := append([]string{"", "1234"}, insulinRxCUIs...)
	for _, in := range valueSet {
		names = append(names, in.Name, strings.ToUpper(in.Name)+" 20MG")
		names = append(names, in.Brands...)
		rxcuis = append(rxcuis, in.RxCUI)
	}
	names = append(names, insulinBrands...)
	for i, a := range names {
		for _, r := range rxcuis {
			if got, want := Classify(a, r), scan(a, r); got != want {
				t.Fatalf("Classify(%q, %q) = %+v, the scan %+v", a, r, got, want)
			}
		}
		for _, b := range names[i:] {
			n := a + " and " + b + "/" + a
			if got, want := Classify(n, ""), scan(n, ""); got != want {
				t.Fatalf("Classify(%q) = %+v, the scan %+v", n, got, want)
			}
		}
	}
}

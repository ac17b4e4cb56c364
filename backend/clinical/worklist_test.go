package clinical

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// adherentPatient takes n medicines, each filled for 30 days every 30 days
// since 2 January 2018.
func adherentPatient(n int) store.Patient {
	pt := store.Patient{TimeZone: "UTC", CreatedAt: time.Date(2017, 6, 1, 12, 0, 0, 0, time.UTC)}
	names := []string{"atorvastatin", "lisinopril", "metformin", "warfarin", "levothyroxine", "sertraline", "amlodipine", "omeprazole", "gabapentin", "tamsulosin"}
	for i := range n {
		id := fmt.Sprintf("m%d", i)
		pt.Medications = append(pt.Medications, rx(id, names[i%len(names)], ""))
		for k := range 12 {
			pt.Fills = append(pt.Fills, store.Fill{MedicationID: id, FilledOn: d("2018-01-02").AddDays(30 * k), DaysSupply: 30})
		}
	}
	return pt
}

func TestBelowSince(t *testing.T) {
	// Two fills of 30 days, 2 January and 1 February: covered through
	// 2 March. The patient is measured from 91 days after the first fill
	// (3 April: 60 of 92 days, 65%) and below from then on.
	pt := store.Patient{TimeZone: "UTC", Medications: []store.Medication{rx("a", "atorvastatin 20 mg", "")},
		Fills: []store.Fill{fillOf("a", "2018-01-02", 30), fillOf("a", "2018-02-01", 30)}}
	for _, c := range []struct{ day, want string }{
		{"2018-01-15", "2018-04-03"}, // not measured yet: the first day it will be, and below
		{"2018-04-03", "2018-04-03"},
		{"2018-07-01", "2018-04-03"}, // below since
	} {
		if got := BelowSince(pt, d(c.day)).String(); got != c.want {
			t.Errorf("BelowSince on %s = %s, want %s", c.day, got, c.want)
		}
	}
	// Next year: no fills in 2019, never measured.
	if got := BelowSince(pt, d("2019-01-01")); !got.IsZero() {
		t.Errorf("BelowSince in the next measurement year = %v, want none", got)
	}
	// Covered all year: never below.
	if got := BelowSince(adherentPatient(1), d("2018-01-15")); !got.IsZero() {
		t.Errorf("BelowSince of an adherent patient = %v, want none", got)
	}
	// Hospice excludes the patient.
	pt.Conditions = []store.Condition{{Kind: store.ConditionHospice, From: d("2018-06-01")}}
	if got := BelowSince(pt, d("2018-07-01")); !got.IsZero() {
		t.Errorf("BelowSince in hospice = %v, want none", got)
	}
}

func TestFollowUpDone(t *testing.T) {
	at := func(s string) time.Time { return d(s).Time().Add(10 * time.Hour) }
	pt := store.Patient{TimeZone: "UTC",
		FollowUps: []store.FollowUp{{ID: "f1", CreatedAt: at("2018-03-01"), DueAt: at("2018-03-15"), ReviewID: "r1"}},
		Reviews:   []store.Review{{ID: "r1", Kind: ReviewCMR, ReviewedOn: d("2018-03-02")}}}
	if got := OverdueFollowUps(pt, at("2018-03-16")); len(got) != 1 {
		t.Fatalf("overdue follow-ups = %v; the review that set it does not do it", got)
	}
	if w := WorklistDates(pt, at("2018-03-01")); w.FollowUp != d("2018-03-15") || w.CMRDue != d("2019-03-02") {
		t.Fatalf("WorklistDates = %+v", w)
	}
	pt.Reviews = append(pt.Reviews, store.Review{ID: "r2", Kind: ReviewTMR, ReviewedOn: d("2018-03-14")})
	if got := OverdueFollowUps(pt, at("2018-03-16")); len(got) != 0 {
		t.Fatalf("overdue follow-ups after a later TMR = %v", got)
	}
	if w := WorklistDates(pt, at("2018-03-01")); !w.FollowUp.IsZero() {
		t.Fatalf("WorklistDates after the TMR = %+v", w)
	}
}

// BenchmarkWorklistDates is what every write of a record pays: an adherent
// patient (the costliest: no day of the year is below) with 10 medicines.
func BenchmarkWorklistDates(b *testing.B) {
	pt := adherentPatient(10)
	now := time.Date(2018, 1, 15, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		WorklistDates(pt, now)
	}
}

// TestBelowDaysAgreesWithMeasures checks the one-pass evaluation the work
// list uses against Measures run for every day of the year, on patients
// drawn at random: class switches, same-day and overlapping fills, gaps,
// stopped medicines, insulin, sacubitril/valsartan, hospice, ESRD and
// inpatient stays.
func TestBelowDaysAgreesWithMeasures(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 4))
	names := []string{"atorvastatin", "simvastatin", "lisinopril", "losartan", "entresto", "metformin", "glipizide", "insulin glargine", "warfarin", "sertraline"}
	year := Period{From: d("2018-01-01"), Through: d("2018-12-31")}
	for p := range 60 {
		pt := store.Patient{TimeZone: "UTC"}
		for i := range 1 + rng.IntN(4) {
			m := rx(fmt.Sprintf("m%d", i), names[rng.IntN(len(names))], "")
			m.StartedOn = d("2017-11-01").AddDays(rng.IntN(200))
			if rng.IntN(4) == 0 {
				m.StoppedOn = m.StartedOn.AddDays(rng.IntN(300))
			}
			pt.Medications = append(pt.Medications, m)
			on := d("2017-12-01").AddDays(rng.IntN(120))
			for range rng.IntN(10) {
				pt.Fills = append(pt.Fills, store.Fill{MedicationID: m.ID, FilledOn: on, DaysSupply: []int{30, 30, 60, 90, 7}[rng.IntN(5)]})
				on = on.AddDays(rng.IntN(70))
			}
		}
		for range rng.IntN(3) {
			from := d("2018-01-01").AddDays(rng.IntN(365) - 30)
			c := store.Condition{Kind: []string{store.ConditionInpatient, store.ConditionSNF, store.ConditionInpatient, store.ConditionHospice, store.ConditionESRD}[rng.IntN(5)], From: from}
			if c.Kind != store.ConditionESRD && rng.IntN(3) > 0 {
				c.Through = from.AddDays(rng.IntN(40))
			}
			pt.Conditions = append(pt.Conditions, c)
		}
		fast := belowDays(pt, year, classify(pt.Medications))
		for i := range fast {
			day := year.From.AddDays(i)
			if slow := len(BelowThreshold(pt, day)) > 0; slow != fast[i] {
				t.Fatalf("patient %d on %s: one pass says below=%v, Measures says %v\n%+v", p, day, fast[i], slow, pt)
			}
		}
	}
}

// TestMeasuresAsBefore pins what Measures, BelowSince and WorklistDates
// answer for 400 patients drawn at random (class switches, combinations,
// duplicate rows, same-day and overlapping fills, stops, insulin,
// sacubitril/valsartan, hospice, ESRD, inpatient stays), on eight days of
// the year, to a digest of the answers of the code before it was made
// faster (commit 514ce25). A deliberate change of a rule changes the
// digest: check the change, then update it.
func TestMeasuresAsBefore(t *testing.T) {
	const want = "2195a6e4bc7b21d58124be051e6420d6817ce1d8907fb1fb01b9a9d3e12e510d"
	rng := rand.New(rand.NewPCG(20261130, 16))
	names := []string{"Atorvastatin 20 mg", "simvastatin", "Lipitor", "Lisinopril-hydrochlorothiazide 20-12.5 mg", "losartan", "Entresto 49-51 mg",
		"Janumet (sitagliptin and metformin)", "glipizide", "Insulin glargine", "Tresiba", "Warfarin 5 mg", "sertraline", "amlodipine and atorvastatin", "Apixaban"}
	h := sha256.New()
	for p := range 400 {
		pt := store.Patient{TimeZone: []string{"UTC", "America/Chicago", "Pacific/Honolulu"}[p%3], CreatedAt: time.Date(2017, 3, 1, 12, 0, 0, 0, time.UTC)}
		for i := range 1 + rng.IntN(8) {
			id := fmt.Sprintf("m%d", i)
			if i > 0 && rng.IntN(10) == 0 {
				id = pt.Medications[0].ID // a duplicate row id
			}
			m := rx(id, names[rng.IntN(len(names))], "")
			m.StartedOn = d("2017-11-01").AddDays(rng.IntN(300))
			if rng.IntN(4) == 0 {
				m.StoppedOn = m.StartedOn.AddDays(rng.IntN(300))
			}
			pt.Medications = append(pt.Medications, m)
			on := d("2017-12-01").AddDays(rng.IntN(150))
			for range rng.IntN(10) {
				pt.Fills = append(pt.Fills, store.Fill{MedicationID: m.ID, FilledOn: on, DaysSupply: []int{30, 30, 60, 90, 7, 0}[rng.IntN(6)]})
				on = on.AddDays(rng.IntN(70))
			}
		}
		for range rng.IntN(3) {
			from := d("2018-01-01").AddDays(rng.IntN(365) - 30)
			c := store.Condition{Kind: []string{store.ConditionInpatient, store.ConditionSNF, store.ConditionInpatient, store.ConditionHospice, store.ConditionESRD}[rng.IntN(5)], From: from}
			if c.Kind != store.ConditionESRD && rng.IntN(3) > 0 {
				c.Through = from.AddDays(rng.IntN(40))
			}
			pt.Conditions = append(pt.Conditions, c)
		}
		for _, day := range []string{"2018-01-20", "2018-03-31", "2018-04-02", "2018-06-30", "2018-09-15", "2018-11-30", "2018-12-31", "2019-02-01"} {
			rs, since := BelowThresholdSince(pt, d(day))
			if !reflect.DeepEqual(rs, BelowThreshold(pt, d(day))) || since != BelowSince(pt, d(day)) {
				t.Fatalf("patient %d on %s: BelowThresholdSince = %+v, %v; BelowThreshold, BelowSince = %+v, %v", p, day, rs, since, BelowThreshold(pt, d(day)), BelowSince(pt, d(day)))
			}
			fmt.Fprintf(h, "%d %s %+v %+v %v %+v\n", p, day, Measures(InputOf(pt, MeasurementYear(d(day)))), Measures(InputOf(pt, Window(d(day), 180))),
				BelowSince(pt, d(day)), WorklistDates(pt, d(day).Time().Add(15*time.Hour)))
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("digest of the answers = %s, want %s", got, want)
	}
}

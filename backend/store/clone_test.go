package store

import (
	"reflect"
	"testing"
	"time"
)

// TestPatientCloneIsDeep fills every field of a Patient, through every
// nested slice, map and pointer, by reflection, and checks that Clone
// returns an equal record sharing no memory with the original: a field of a
// reference type added to Patient (or to anything it holds) without a copy
// in Clone fails here, before a cached record is changed under a reader.
func TestPatientCloneIsDeep(t *testing.T) {
	for _, n := range []int{0, 2} {
		var p Patient
		fillAll(t, reflect.ValueOf(&p).Elem(), n, "Patient")
		c := p.Clone()
		if !reflect.DeepEqual(p, c) {
			t.Fatalf("slices of length %d: clone differs from the original:\n%+v\n%+v", n, p, c)
		}
		noSharedMemory(t, reflect.ValueOf(p), reflect.ValueOf(c), "Patient")
	}
	if c := (Patient{}).Clone(); !reflect.DeepEqual(c, Patient{}) {
		t.Errorf("zero patient: clone %+v, want the zero patient (nil slices stay nil)", c)
	}
}

// TestPatientCloneChangeInPlace: what a caller changes in place in a clone
// is not seen by the original.
func TestPatientCloneChangeInPlace(t *testing.T) {
	p := Patient{Medications: []Medication{{Name: "metformin", History: []MedicationChange{{Reason: "start"}}}}}
	c := p.Clone()
	c.Medications[0].Name = "lisinopril"
	c.Medications[0].History[0].Reason = "changed"
	c.Medications = append(c.Medications, Medication{Name: "added"})
	if p.Medications[0].Name != "metformin" || p.Medications[0].History[0].Reason != "start" || len(p.Medications) != 1 {
		t.Errorf("original changed through its clone: %+v", p.Medications)
	}

	// The rows' histories share one array in the clone: appending to one
	// must not write over the next.
	p = Patient{Medications: []Medication{
		{History: []MedicationChange{{Reason: "a1"}}},
		{History: []MedicationChange{{Reason: "b1"}}},
	}}
	c = p.Clone()
	c.Medications[0].History = append(c.Medications[0].History, MedicationChange{Reason: "a2"})
	if got := c.Medications[1].History[0].Reason; got != "b1" {
		t.Errorf("appending to the first row's history changed the second's to %q", got)
	}
}

var timeType = reflect.TypeOf(time.Time{})

// fillAll sets every field reachable from v to a non-zero value, with
// slices and maps of n elements.
func fillAll(t *testing.T, v reflect.Value, n int, path string) {
	t.Helper()
	if v.Type() == timeType {
		v.Set(reflect.ValueOf(time.Date(2026, 11, 30, 8, 0, 0, 0, time.FixedZone("x", 3600))))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s: unexported field; teach this test to fill it", path, f.Name)
			}
			fillAll(t, v.Field(i), n, path+"."+f.Name)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillAll(t, s.Index(i), n, path+"[]")
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range n {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fillAll(t, k, n, path+"{key}")
			if k.Kind() == reflect.String {
				k.SetString(k.String() + string(rune('a'+i)))
			}
			fillAll(t, e, n, path+"{}")
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		fillAll(t, e.Elem(), n, path+"*")
		v.Set(e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	default:
		t.Fatalf("%s: kind %s; teach this test to fill it", path, v.Kind())
	}
}

// noSharedMemory fails when a and b (equal values) share a slice's backing
// array, a map or a pointer target anywhere.
func noSharedMemory(t *testing.T, a, b reflect.Value, path string) {
	t.Helper()
	if a.Type() == timeType {
		return // immutable; its *Location is shared by design
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			noSharedMemory(t, a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
		}
	case reflect.Slice:
		if a.Cap() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the slice's backing array; copy it in Clone", path)
			return
		}
		for i := range a.Len() {
			noSharedMemory(t, a.Index(i), b.Index(i), path+"[]")
		}
	case reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the map; copy it in Clone", path)
			return
		}
		for _, k := range a.MapKeys() {
			noSharedMemory(t, a.MapIndex(k), b.MapIndex(k), path+"{}")
		}
	case reflect.Pointer:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the pointer's target; copy it in Clone", path)
			return
		}
		if !a.IsNil() {
			noSharedMemory(t, a.Elem(), b.Elem(), path+"*")
		}
	}
}

// BenchmarkPatientClone: the cost of a cache hit (see recordcache) on a
// 20-medicine record shaped like the load test's.
func BenchmarkPatientClone(b *testing.B) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	p := Patient{ID: "pt_1", PharmacyID: "ph_1", GivenName: "Ana", FamilyName: "Lopez",
		Allergies: []Allergy{{ID: "al_1", Kind: KindAllergy, Substance: "Penicillin", RecordedAt: now}},
		Grants:    []Grant{{ID: "gr_1", CaregiverID: "ac_1", Scopes: []Scope{ScopeViewMedicines, ScopeViewPlan}}}}
	for i := range 20 {
		m := Medication{ID: "md", Name: "metformin", Strength: "500 mg", StartedOn: Date{2025, 1, 1}, UpdatedAt: now, Version: 1}
		if i%4 == 0 {
			m.History = []MedicationChange{{At: now, By: "ac_1", Reason: "dose adjusted"}}
		}
		p.Medications = append(p.Medications, m)
		p.Fills = append(p.Fills, Fill{ID: "fl", MedicationID: "md", FilledOn: Date{2026, 11, 1}, DaysSupply: 30, RecordedAt: now})
		p.DoseSchedules = append(p.DoseSchedules, DoseSchedule{ID: "ds", MedicationID: "md", TimesOfDay: []int{480, 1200}, StartOn: Date{2025, 1, 1}})
	}
	for range 3 {
		p.ActionItems = append(p.ActionItems, ActionItem{ID: "ai", WhatINeedToDo: "walk", Progress: []Progress{{WhatIDid: "walked", RecordedAt: now}}})
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Clone()
	}
}

package storetest

import (
	"reflect"
	"slices"
	"testing"
)

// TestSamplePatientSetsEveryField guards the round-trip case: a field
// added to the records but left unset in SamplePatient would escape it.
// A field of a slice element counts as set when any element sets it.
func TestSamplePatientSetsEveryField(t *testing.T) {
	p := SamplePatient("pat-1", "ph-1", 4)
	p.Version, p.ProfileVersion = 1, 1 // the fields a caller leaves to the store
	seen, set := map[string]bool{}, map[string]bool{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		seen[path] = true
		if v.IsZero() {
			return
		}
		set[path] = true
		switch v.Kind() {
		case reflect.Struct:
			if v.Type().PkgPath() == "time" {
				return
			}
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), path+"[]")
			}
		}
	}
	walk(reflect.ValueOf(p), "Patient")
	var unset []string
	for path := range seen {
		if !set[path] {
			unset = append(unset, path)
		}
	}
	slices.Sort(unset)
	for _, path := range unset {
		t.Errorf("SamplePatient leaves %s unset", path)
	}
}

package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// normTime is the form in which the suite compares times: UTC, whole
// microseconds, no monotonic reading. The zero time stays zero.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// normPatient returns p with every time normalized (normTime) and empty
// slices nil, at any depth, so that two records a user could not tell apart
// compare equal with reflect.DeepEqual. It works by reflection so that
// fields added to the records later are covered without changes here.
func normPatient(p store.Patient) store.Patient {
	v := reflect.ValueOf(&p).Elem()
	normValue(v)
	return p
}

// normValue normalizes the settable value v in place.
func normValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			v.Set(reflect.ValueOf(normTime(t)))
			return
		}
		for i := range v.NumField() {
			normValue(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len()) // never write through to the caller's slice
		reflect.Copy(c, v)
		for i := range c.Len() {
			normValue(c.Index(i))
		}
		v.Set(c)
	}
}

// samePatient fails the test unless got and want hold the same data.
func samePatient(t *testing.T, op string, got, want store.Patient) {
	t.Helper()
	g, w := normPatient(got), normPatient(want)
	if reflect.DeepEqual(g, w) {
		return
	}
	t.Fatalf("%s: record differs from what was stored:\n%s", op, diffFields(reflect.ValueOf(g), reflect.ValueOf(w), "Patient"))
}

// diffFields lists the paths at which got and want differ.
func diffFields(got, want reflect.Value, path string) string {
	switch got.Kind() {
	case reflect.Struct:
		if got.Type() == reflect.TypeFor[time.Time]() {
			break
		}
		var out string
		for i := range got.NumField() {
			out += diffFields(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name)
		}
		return out
	case reflect.Slice:
		if got.Len() != want.Len() {
			return fmt.Sprintf("  %s: got %d elements, want %d\n", path, got.Len(), want.Len())
		}
		var out string
		for i := range got.Len() {
			out += diffFields(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		return out
	}
	if reflect.DeepEqual(got.Interface(), want.Interface()) {
		return ""
	}
	return fmt.Sprintf("  %s: got %v, want %v\n", path, got.Interface(), want.Interface())
}

// sameTime fails the test unless got and want are the same instant, to the
// microsecond.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !normTime(got).Equal(normTime(want)) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

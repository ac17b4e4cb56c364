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

// normPatient returns p with every time normalized and empty slices nil,
// so that two records a user could not tell apart compare equal with
// reflect.DeepEqual.
func normPatient(p store.Patient) store.Patient {
	p.ActivatedAt = normTime(p.ActivatedAt)
	p.CreatedAt = normTime(p.CreatedAt)
	p.UpdatedAt = normTime(p.UpdatedAt)
	p.Medications = normSlice(p.Medications, func(m store.Medication) store.Medication {
		m.UpdatedAt = normTime(m.UpdatedAt)
		return m
	})
	p.Allergies = normSlice(p.Allergies, func(a store.Allergy) store.Allergy {
		a.RecordedAt = normTime(a.RecordedAt)
		return a
	})
	p.Fills = normSlice(p.Fills, func(f store.Fill) store.Fill {
		f.RecordedAt = normTime(f.RecordedAt)
		return f
	})
	p.ActionItems = normSlice(p.ActionItems, func(a store.ActionItem) store.ActionItem {
		a.CreatedAt = normTime(a.CreatedAt)
		a.UpdatedAt = normTime(a.UpdatedAt)
		a.Progress = normSlice(a.Progress, func(g store.Progress) store.Progress {
			g.RecordedAt = normTime(g.RecordedAt)
			return g
		})
		return a
	})
	return p
}

// normSlice applies f to a copy of every element; an empty slice becomes nil.
func normSlice[E any](s []E, f func(E) E) []E {
	if len(s) == 0 {
		return nil
	}
	out := make([]E, len(s))
	for i, e := range s {
		out[i] = f(e)
	}
	return out
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

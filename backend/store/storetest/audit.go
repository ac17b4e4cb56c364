package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// auditEvent returns event number i (IDs sort by i) on the patient.
func auditEvent(patientID string, i int) store.AuditEvent {
	return store.AuditEvent{
		ID:        fmt.Sprintf("%s-%06d", "01JD8Y3Q2W", i),
		Time:      t0.Add(time.Duration(i) * time.Minute),
		ActorID:   "acct-caregiver-0042",
		ActorRole: store.RoleCaregiver,
		ActorName: "Fiona O'Connor",
		PatientID: patientID,
		Procedure: "/mtm.v1.PatientService/GetMedicationList",
		Object:    "med-003",
		Allowed:   i%2 == 0,
		Code:      []string{"ok", "permission_denied"}[i%2],
		RequestID: fmt.Sprintf("req-%d", i),
	}
}

// appendEvents appends events from..to (inclusive) with the given keep.
func appendEvents(t *testing.T, a store.AuditTrail, patientID string, from, to, keep int) {
	t.Helper()
	for i := from; i <= to; i++ {
		must(t, "AppendAuditEvent", a.AppendAuditEvent(t.Context(), auditEvent(patientID, i), keep))
	}
}

// eventNumbers lists which auditEvent numbers evs are, failing on an event
// that does not round-trip.
func eventNumbers(t *testing.T, evs []store.AuditEvent) []int {
	t.Helper()
	var out []int
	for _, ev := range evs {
		var i int
		if _, err := fmt.Sscanf(ev.ID, "01JD8Y3Q2W-%06d", &i); err != nil {
			t.Fatalf("unexpected event id %q", ev.ID)
		}
		g, w := ev, auditEvent(ev.PatientID, i)
		normValue(reflect.ValueOf(&g).Elem())
		normValue(reflect.ValueOf(&w).Elem())
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
		out = append(out, i)
	}
	return out
}

var auditCases = []testCase{
	{"ListNewestFirstWithPaging", func(t *testing.T, s store.Store) {
		a, ctx := s, t.Context()
		appendEvents(t, a, "pat-1", 1, 5, 100)
		pages := []struct {
			before string
			limit  int
			want   []int
		}{
			{"", 2, []int{5, 4}},
			{auditEvent("", 4).ID, 2, []int{3, 2}},
			{auditEvent("", 2).ID, 2, []int{1}},
			{auditEvent("", 1).ID, 2, nil},
			{"", 10, []int{5, 4, 3, 2, 1}},
			{"zzz", 1, []int{5}},
		}
		for _, pg := range pages {
			got, err := a.ListAuditEvents(ctx, "pat-1", pg.before, pg.limit)
			must(t, "ListAuditEvents", err)
			if n := eventNumbers(t, got); !slices.Equal(n, pg.want) {
				t.Fatalf("ListAuditEvents(before=%q, limit=%d) = events %v, want %v", pg.before, pg.limit, n, pg.want)
			}
		}
	}},
	{"KeepsNewestWindow", func(t *testing.T, s store.Store) {
		a, ctx := s, t.Context()
		appendEvents(t, a, "pat-1", 1, 8, 5)
		got, err := a.ListAuditEvents(ctx, "pat-1", "", 100)
		must(t, "ListAuditEvents", err)
		if n := eventNumbers(t, got); !slices.Equal(n, []int{8, 7, 6, 5, 4}) {
			t.Fatalf("with keep=5 after 8 events: kept %v, want [8 7 6 5 4]", n)
		}
	}},
	{"PatientsAreSeparate", func(t *testing.T, s store.Store) {
		a, ctx := s, t.Context()
		appendEvents(t, a, "pat-1", 1, 3, 2)
		appendEvents(t, a, "pat-2", 4, 4, 2)
		got, err := a.ListAuditEvents(ctx, "pat-2", "", 10)
		must(t, "ListAuditEvents", err)
		if n := eventNumbers(t, got); !slices.Equal(n, []int{4}) {
			t.Fatalf("pat-2 sees events %v, want [4]", n)
		}
		got, err = a.ListAuditEvents(ctx, "pat-1", "", 10)
		must(t, "ListAuditEvents", err)
		if n := eventNumbers(t, got); !slices.Equal(n, []int{3, 2}) {
			t.Fatalf("pat-1 sees events %v, want [3 2]", n)
		}
		got, err = a.ListAuditEvents(ctx, "pat-none", "", 10)
		must(t, "ListAuditEvents of a patient with no events", err)
		if len(got) != 0 {
			t.Fatalf("patient with no events has %d", len(got))
		}
	}},
}

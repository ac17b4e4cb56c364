package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// firstRefusal is the first auditEvent number that is a refusal: events
// below it are accesses (allowed or failed), from it on denied or throttled.
const firstRefusal = 1000

// auditEvent returns event number i (IDs sort by i) on the patient; see
// firstRefusal for its outcome.
func auditEvent(patientID string, i int) store.AuditEvent {
	outcomes := []store.AuditOutcome{store.OutcomeAllowed, store.OutcomeFailed}
	codes := []string{"ok", "aborted"}
	if i >= firstRefusal {
		outcomes = []store.AuditOutcome{store.OutcomeDenied, store.OutcomeThrottled}
		codes = []string{"not_found", "resource_exhausted"}
	}
	return store.AuditEvent{
		ID:        fmt.Sprintf("%s-%06d", "01JD8Y3Q2W", i),
		Time:      t0.Add(time.Duration(i) * time.Minute),
		ActorID:   "acct-caregiver-0042",
		ActorRole: store.RoleCaregiver,
		ActorName: "Fiona O'Connor",
		PatientID: patientID,
		Procedure: "/mtm.v1.PatientService/GetMedicationList",
		Object:    "med-003",
		Allowed:   outcomes[i%2] == store.OutcomeAllowed,
		Outcome:   outcomes[i%2],
		Code:      codes[i%2],
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
	{"RefusalsNeverEvictAccesses", func(t *testing.T, s store.Store) {
		// An outsider refused 50 times in a row must not push the record
		// of who read the record out of its window.
		a, ctx := s, t.Context()
		appendEvents(t, a, "pat-1", 1, 3, 5)
		appendEvents(t, a, "pat-1", firstRefusal, firstRefusal+49, 5)
		got, err := a.ListAuditEvents(ctx, "pat-1", "", 100)
		must(t, "ListAuditEvents", err)
		want := []int{firstRefusal + 49, firstRefusal + 48, firstRefusal + 47, firstRefusal + 46, firstRefusal + 45, 3, 2, 1}
		if n := eventNumbers(t, got); !slices.Equal(n, want) {
			t.Fatalf("after 3 accesses and 50 refusals (keep=5): events %v, want %v", n, want)
		}
		// Accesses still evict older accesses.
		appendEvents(t, a, "pat-1", 4, 9, 5)
		got, err = a.ListAuditEvents(ctx, "pat-1", "", 100)
		must(t, "ListAuditEvents", err)
		want = []int{firstRefusal + 49, firstRefusal + 48, firstRefusal + 47, firstRefusal + 46, firstRefusal + 45, 9, 8, 7, 6, 5}
		if n := eventNumbers(t, got); !slices.Equal(n, want) {
			t.Fatalf("after 6 more accesses: events %v, want %v", n, want)
		}
	}},
	{"PagesAcrossBothWindowsByID", func(t *testing.T, s store.Store) {
		// Accesses and refusals interleaved in time page as one list.
		a, ctx := s, t.Context()
		outcomes := []store.AuditOutcome{store.OutcomeFailed, store.OutcomeThrottled, store.OutcomeAllowed,
			store.OutcomeDenied, store.OutcomeAllowed, store.OutcomeThrottled}
		for i, o := range outcomes {
			ev := auditEvent("pat-1", 1)
			ev.ID, ev.Outcome, ev.Allowed = fmt.Sprintf("e%d", i+1), o, o == store.OutcomeAllowed
			must(t, "AppendAuditEvent", a.AppendAuditEvent(ctx, ev, 10))
		}
		var got []string
		before := ""
		for range 4 {
			page, err := a.ListAuditEvents(ctx, "pat-1", before, 4)
			must(t, "ListAuditEvents", err)
			for _, ev := range page {
				got = append(got, ev.ID+"/"+string(ev.Outcome))
			}
			if len(page) < 4 {
				break
			}
			before = page[len(page)-1].ID
		}
		want := []string{"e6/throttled", "e5/allowed", "e4/denied", "e3/allowed", "e2/throttled", "e1/failed"}
		if !slices.Equal(got, want) {
			t.Fatalf("pages of 4 = %v, want %v", got, want)
		}
	}},
	{"EventWithoutOutcomeFollowsAllowed", func(t *testing.T, s store.Store) {
		// Events written before outcomes existed: Allowed alone decides.
		a, ctx := s, t.Context()
		for i, allowed := range []bool{true, false} {
			ev := auditEvent("pat-1", i+1)
			ev.Outcome, ev.Allowed = "", allowed
			must(t, "AppendAuditEvent", a.AppendAuditEvent(ctx, ev, 1))
		}
		got, err := a.ListAuditEvents(ctx, "pat-1", "", 10)
		must(t, "ListAuditEvents", err)
		if len(got) != 2 || got[0].EffectiveOutcome() != store.OutcomeDenied || got[1].EffectiveOutcome() != store.OutcomeAllowed {
			t.Fatalf("with keep=1, a legacy allowed then a legacy denied event: got %+v, want both kept (separate windows)", got)
		}
	}},
}

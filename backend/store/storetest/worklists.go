package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

func day(m time.Month, d int) store.Date { return store.Date{Year: 2026, Month: m, Day: d} }

// listed returns the ids of a work list through a day, read in pages of
// size, following the cursor.
func listed(t *testing.T, s store.Store, pharmacyID string, l store.Worklist, through store.Date, size int) []string {
	t.Helper()
	var ids []string
	var after store.WorklistCursor
	for range 100 {
		page, err := s.ListWorklist(t.Context(), pharmacyID, l, through, after, size)
		must(t, "ListWorklist", err)
		for _, e := range page {
			if e.Patient.Worklist.Get(l) != e.Due {
				t.Fatalf("entry of %s is due %v, its record says %v", e.Patient.ID, e.Due, e.Patient.Worklist.Get(l))
			}
			ids = append(ids, e.Patient.ID)
			after = store.WorklistCursor{Due: e.Due, PatientID: e.Patient.ID}
		}
		if len(page) < size {
			return ids
		}
	}
	t.Fatal("ListWorklist never reached the end")
	return nil
}

func worklistPatient(id, pharmacyID string, w store.WorklistDates) store.Patient {
	return store.Patient{ID: id, PharmacyID: pharmacyID, GivenName: "Ana", TimeZone: "UTC", Worklist: w}
}

var worklistCases = []testCase{
	{"RangeByDateThenIDInPages", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, p := range []store.Patient{
			worklistPatient("pat-c", "ph-1", store.WorklistDates{CMRDue: day(time.March, 1)}),
			worklistPatient("pat-a", "ph-1", store.WorklistDates{CMRDue: day(time.March, 1)}),
			worklistPatient("pat-b", "ph-1", store.WorklistDates{CMRDue: day(time.February, 27), FollowUp: day(time.March, 3)}),
			worklistPatient("pat-d", "ph-1", store.WorklistDates{CMRDue: day(time.March, 2)}),
			worklistPatient("pat-e", "ph-1", store.WorklistDates{}), // on no list
			worklistPatient("pat-x", "ph-2", store.WorklistDates{CMRDue: day(time.January, 1)}),
		} {
			must(t, "CreatePatient", s.CreatePatient(ctx, p))
		}
		want := []string{"pat-b", "pat-a", "pat-c"}
		for _, size := range []int{1, 2, 10} {
			if got := listed(t, s, "ph-1", store.WorklistCMRDue, day(time.March, 1), size); !slices.Equal(got, want) {
				t.Fatalf("CMR due through 1 March, pages of %d: %v, want %v", size, got, want)
			}
		}
		if got := listed(t, s, "ph-1", store.WorklistCMRDue, day(time.December, 31), 10); !slices.Equal(got, []string{"pat-b", "pat-a", "pat-c", "pat-d"}) {
			t.Fatalf("CMR due through the year: %v", got)
		}
		if got := listed(t, s, "ph-1", store.WorklistFollowUp, day(time.March, 2), 10); len(got) != 0 {
			t.Fatalf("follow-ups through 2 March: %v, want none", got)
		}
		if got := listed(t, s, "ph-1", store.WorklistFollowUp, day(time.March, 3), 10); !slices.Equal(got, []string{"pat-b"}) {
			t.Fatalf("follow-ups through 3 March: %v", got)
		}
		if got := listed(t, s, "ph-1", store.WorklistBelowPDC, day(time.December, 31), 10); len(got) != 0 {
			t.Fatalf("below PDC: %v, want none", got)
		}
		if got := listed(t, s, "ph-unknown", store.WorklistCMRDue, day(time.December, 31), 10); len(got) != 0 {
			t.Fatalf("unknown pharmacy: %v", got)
		}
	}},
	{"UpdateMovesTheEntry", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, worklistPatient("pat-1", "ph-1", store.WorklistDates{CMRDue: day(time.March, 1)})))
		_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Worklist.CMRDue = day(time.May, 1) // a CMR was recorded
			p.Worklist.BelowPDC = day(time.April, 10)
			return p, nil
		})
		must(t, "UpdatePatient", err)
		if got := listed(t, s, "ph-1", store.WorklistCMRDue, day(time.April, 30), 10); len(got) != 0 {
			t.Fatalf("CMR due through 30 April after the move: %v, want none", got)
		}
		if got := listed(t, s, "ph-1", store.WorklistCMRDue, day(time.May, 1), 10); !slices.Equal(got, []string{"pat-1"}) {
			t.Fatalf("CMR due through 1 May: %v", got)
		}
		if got := listed(t, s, "ph-1", store.WorklistBelowPDC, day(time.April, 10), 10); !slices.Equal(got, []string{"pat-1"}) {
			t.Fatalf("below PDC through 10 April: %v", got)
		}
		// A refused update leaves the index as it was.
		_, err = s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Worklist = store.WorklistDates{}
			return p, errors.New("refused")
		})
		if err == nil {
			t.Fatal("UpdatePatient with fn's error: nil")
		}
		if got := listed(t, s, "ph-1", store.WorklistCMRDue, day(time.May, 1), 10); !slices.Equal(got, []string{"pat-1"}) {
			t.Fatalf("after a refused update: %v", got)
		}
		_, err = s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Worklist = store.WorklistDates{}
			return p, nil
		})
		must(t, "UpdatePatient", err)
		for _, l := range store.AllWorklists {
			if got := listed(t, s, "ph-1", l, day(time.December, 31), 10); len(got) != 0 {
				t.Fatalf("%s after clearing the dates: %v", l, got)
			}
		}
	}},
	{"SetWorklistDatesKeepsTheVersion", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, worklistPatient("pat-1", "ph-1", store.WorklistDates{BelowPDC: day(time.March, 1)})))
		wantErr(t, "SetWorklistDates on a stale version", s.SetWorklistDates(ctx, "pat-1", 7, store.WorklistDates{}), store.ErrConflict)
		wantErr(t, "SetWorklistDates of a missing patient", s.SetWorklistDates(ctx, "pat-none", 1, store.WorklistDates{}), store.ErrNotFound)
		must(t, "SetWorklistDates", s.SetWorklistDates(ctx, "pat-1", 1, store.WorklistDates{BelowPDC: day(time.June, 1)}))
		p, err := s.GetPatient(ctx, "pat-1")
		must(t, "GetPatient", err)
		if p.Version != 1 || p.Worklist.BelowPDC != day(time.June, 1) {
			t.Fatalf("after SetWorklistDates: version %d, dates %+v", p.Version, p.Worklist)
		}
		if got := listed(t, s, "ph-1", store.WorklistBelowPDC, day(time.May, 31), 10); len(got) != 0 {
			t.Fatalf("below PDC through 31 May: %v, want none", got)
		}
		if got := listed(t, s, "ph-1", store.WorklistBelowPDC, day(time.June, 1), 10); !slices.Equal(got, []string{"pat-1"}) {
			t.Fatalf("below PDC through 1 June: %v", got)
		}
	}},
	{"ReindexIsIdempotent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, worklistPatient("pat-1", "ph-1", store.WorklistDates{FollowUp: day(time.March, 1)})))
		for range 2 {
			must(t, "ReindexPatient", s.ReindexPatient(ctx, "pat-1"))
		}
		wantErr(t, "ReindexPatient of a missing patient", s.ReindexPatient(ctx, "pat-none"), store.ErrNotFound)
		if got := listed(t, s, "ph-1", store.WorklistFollowUp, day(time.March, 1), 10); !slices.Equal(got, []string{"pat-1"}) {
			t.Fatalf("after reindexing twice: %v", got)
		}
	}},
}

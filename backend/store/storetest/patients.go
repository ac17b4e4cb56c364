package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

var patientCases = []testCase{
	{"CreateGetRoundTripsEveryField", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := SamplePatient("pat-1", "ph-1", 20)
		must(t, "CreatePatient", s.CreatePatient(ctx, want))
		got, err := s.GetPatient(ctx, want.ID)
		must(t, "GetPatient", err)
		want.Version, want.ProfileVersion = 1, 1
		samePatient(t, "GetPatient", got, want)
	}},
	{"EmptyRecordRoundTrips", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := store.Patient{ID: "pat-1", PharmacyID: "ph-1", GivenName: "Sam"}
		must(t, "CreatePatient", s.CreatePatient(ctx, want))
		got, err := s.GetPatient(ctx, want.ID)
		must(t, "GetPatient", err)
		want.Version, want.ProfileVersion = 1, 1
		samePatient(t, "GetPatient", got, want)
	}},
	{"DuplicateKeepsOriginal", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 2)))
		dup := SamplePatient("pat-1", "ph-2", 0)
		dup.GivenName = "Impostor"
		wantErr(t, "CreatePatient again", s.CreatePatient(ctx, dup), store.ErrAlreadyExists)
		got, err := s.GetPatient(ctx, "pat-1")
		must(t, "GetPatient", err)
		if got.GivenName == "Impostor" || got.PharmacyID != "ph-1" || len(got.Medications) != 2 {
			t.Fatalf("duplicate create changed the record: %q of %q with %d medications", got.GivenName, got.PharmacyID, len(got.Medications))
		}
		list, err := s.ListPatients(ctx, "ph-2", "", 10)
		must(t, "ListPatients", err)
		if len(list) != 0 {
			t.Fatalf("refused duplicate was indexed under its pharmacy: %d patients listed", len(list))
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.GetPatient(ctx, "pat-missing")
		wantErr(t, "GetPatient", err, store.ErrNotFound)
		_, err = s.UpdatePatient(ctx, "pat-missing", func(p store.Patient) (store.Patient, error) {
			p.GivenName = "Ghost"
			return p, nil
		})
		wantErr(t, "UpdatePatient", err, store.ErrNotFound)
		_, err = s.GetPatient(ctx, "pat-missing")
		wantErr(t, "GetPatient after update of a missing patient", err, store.ErrNotFound)
	}},
	{"UpdateIncrementsVersionAndReturnsStored", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 3)))
		for wantVersion := int64(2); wantVersion <= 4; wantVersion++ {
			var seen int64
			updated, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
				seen = p.Version
				p.FollowUpPlan = fmt.Sprintf("plan %d", wantVersion)
				p.Medications[0].Version++
				p.Version = 99 // ignored: the store sets Version
				return p, nil
			})
			must(t, "UpdatePatient", err)
			if seen != wantVersion-1 {
				t.Fatalf("fn saw Version %d, want %d", seen, wantVersion-1)
			}
			if updated.Version != wantVersion {
				t.Fatalf("returned Version = %d, want %d", updated.Version, wantVersion)
			}
			got, err := s.GetPatient(ctx, "pat-1")
			must(t, "GetPatient", err)
			samePatient(t, "GetPatient after update", got, updated)
			if got.FollowUpPlan != fmt.Sprintf("plan %d", wantVersion) {
				t.Fatalf("update not stored: FollowUpPlan %q", got.FollowUpPlan)
			}
		}
	}},
	{"ProfileVersionMovesOnlyWithTheProfile", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 3)))
		update := func(fn func(*store.Patient)) store.Patient {
			t.Helper()
			p, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
				fn(&p)
				p.ProfileVersion = 99 // ignored: the store stamps it
				return p, nil
			})
			must(t, "UpdatePatient", err)
			got, err := s.GetPatient(ctx, "pat-1")
			must(t, "GetPatient", err)
			samePatient(t, "GetPatient after update", got, p)
			return got
		}
		// A pharmacist's change to the PML, allergies or plan leaves the
		// profile's version alone, however often the record changes.
		p := update(func(p *store.Patient) {
			p.Medications = append(p.Medications, store.Medication{ID: "md-new", Name: "Metformin", Version: 1})
			p.Allergies = nil
			p.FollowUpPlan = "call in a week"
		})
		if p.ProfileVersion != 1 || p.Version != 2 {
			t.Fatalf("after a PML change: ProfileVersion %d, Version %d; want 1, 2", p.ProfileVersion, p.Version)
		}
		// A change to the preferences moves it, once per change.
		p = update(func(p *store.Patient) { p.QuietHours = store.QuietHours{StartMinute: 21 * 60, EndMinute: 7 * 60} })
		if p.ProfileVersion != 2 {
			t.Fatalf("after a preferences change: ProfileVersion %d, want 2", p.ProfileVersion)
		}
		p = update(func(p *store.Patient) { p.EmergencyContact.Phone = "+1 555 0100" })
		if p.ProfileVersion != 3 {
			t.Fatalf("after a contact change: ProfileVersion %d, want 3", p.ProfileVersion)
		}
		p = update(func(p *store.Patient) { p.Questions = "is it safe with grapefruit?" })
		if p.ProfileVersion != 3 {
			t.Fatalf("after a MAP change: ProfileVersion %d, want 3", p.ProfileVersion)
		}
	}},
	{"UpdateFnErrorWritesNothing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		orig := SamplePatient("pat-1", "ph-1", 3)
		must(t, "CreatePatient", s.CreatePatient(ctx, orig))
		errNo := errors.New("pharmacist cancelled")
		_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Medications = nil
			p.GivenName = "Changed"
			return p, errNo
		})
		wantErr(t, "UpdatePatient", err, errNo)
		got, err := s.GetPatient(ctx, "pat-1")
		must(t, "GetPatient", err)
		orig.Version, orig.ProfileVersion = 1, 1
		samePatient(t, "GetPatient after aborted update", got, orig)
	}},
	{"UpdateRefusesIdentityChange", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		orig := SamplePatient("pat-1", "ph-1", 1)
		must(t, "CreatePatient", s.CreatePatient(ctx, orig))
		orig.Version, orig.ProfileVersion = 1, 1
		changes := []struct {
			name string
			fn   func(*store.Patient)
		}{
			{"ID", func(p *store.Patient) { p.ID = "pat-2" }},
			{"PharmacyID", func(p *store.Patient) { p.PharmacyID = "ph-2" }},
		}
		for _, c := range changes {
			_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
				c.fn(&p)
				p.GivenName = "Changed"
				return p, nil
			})
			if err == nil {
				t.Fatalf("UpdatePatient changing %s: got nil error", c.name)
			}
			got, err := s.GetPatient(ctx, "pat-1")
			must(t, "GetPatient", err)
			samePatient(t, "GetPatient after refused "+c.name+" change", got, orig)
			_, err = s.GetPatient(ctx, "pat-2")
			wantErr(t, "GetPatient under the new id", err, store.ErrNotFound)
			list, err := s.ListPatients(ctx, "ph-2", "", 10)
			must(t, "ListPatients", err)
			if len(list) != 0 {
				t.Fatalf("refused %s change moved the patient to ph-2", c.name)
			}
		}
	}},
	{"ConcurrentUpdatesAllLand", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 0)))
		const n = 16
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
					p.Medications = append(p.Medications, store.Medication{ID: fmt.Sprintf("med-%02d", i), Name: "Drug"})
					return p, nil
				})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, "concurrent UpdatePatient", err)
		}
		got, err := s.GetPatient(ctx, "pat-1")
		must(t, "GetPatient", err)
		if got.Version != n+1 {
			t.Errorf("Version = %d after %d updates, want %d", got.Version, n, n+1)
		}
		var ids []string
		for _, m := range got.Medications {
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		if len(ids) != n || len(slices.Compact(ids)) != n {
			t.Fatalf("got medications %v, want %d distinct (an update was lost)", ids, n)
		}
	}},
}

var listCases = []testCase{
	{"PagesInIDOrderWithinPharmacy", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, id := range []string{"pat-c", "pat-a", "pat-e", "pat-b", "pat-d"} {
			must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient(id, "ph-1", 2)))
		}
		for _, id := range []string{"pat-0", "pat-bb", "pat-z"} {
			must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient(id, "ph-2", 1)))
		}
		pages := []struct {
			after string
			limit int
			want  []string
		}{
			{"", 2, []string{"pat-a", "pat-b"}},
			{"pat-b", 2, []string{"pat-c", "pat-d"}},
			{"pat-d", 2, []string{"pat-e"}},
			{"pat-e", 2, nil},
			{"", 10, []string{"pat-a", "pat-b", "pat-c", "pat-d", "pat-e"}},
			{"pat-bb", 2, []string{"pat-c", "pat-d"}}, // after need not be a listed id
		}
		for _, pg := range pages {
			got, err := s.ListPatients(ctx, "ph-1", pg.after, pg.limit)
			must(t, "ListPatients", err)
			var ids []string
			for _, p := range got {
				if p.PharmacyID != "ph-1" {
					t.Fatalf("ListPatients(ph-1) returned %s of pharmacy %s", p.ID, p.PharmacyID)
				}
				if len(p.Medications) != 2 || p.Version != 1 {
					t.Fatalf("ListPatients returned a partial record for %s: %d medications, version %d", p.ID, len(p.Medications), p.Version)
				}
				ids = append(ids, p.ID)
			}
			if !slices.Equal(ids, pg.want) {
				t.Fatalf("ListPatients(after=%q, limit=%d) = %v, want %v", pg.after, pg.limit, ids, pg.want)
			}
		}
	}},
	{"UnknownPharmacyIsEmpty", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 0)))
		got, err := s.ListPatients(ctx, "ph-none", "", 10)
		must(t, "ListPatients", err)
		if len(got) != 0 {
			t.Fatalf("ListPatients of an unknown pharmacy returned %d patients", len(got))
		}
	}},
	{"ShowsCurrentVersion", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 0)))
		updated, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.FamilyName = "Renamed"
			return p, nil
		})
		must(t, "UpdatePatient", err)
		got, err := s.ListPatients(ctx, "ph-1", "", 10)
		must(t, "ListPatients", err)
		if len(got) != 1 {
			t.Fatalf("ListPatients returned %d patients, want 1", len(got))
		}
		samePatient(t, "ListPatients after update", got[0], updated)
	}},
}

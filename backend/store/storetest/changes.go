package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// changeCases hold backends to the change-log contract: what UpdatePatient
// and the thread writes log, paging, trimming, and the head read without
// the record.
var changeCases = []testCase{
	{"NewPatientHasEmptyLog", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 2)))
		pv, err := s.PatientParts(ctx, "pat-1")
		must(t, "PatientParts", err)
		if pv.Head != 0 || len(pv.Kinds) != 0 {
			t.Fatalf("PatientParts of a new patient = %+v, want an empty head", pv)
		}
		cs, _, err := s.PatientChanges(ctx, "pat-1", 0, 10)
		must(t, "PatientChanges", err)
		if len(cs) != 0 {
			t.Fatalf("PatientChanges of a new patient = %+v, want none", cs)
		}
		_, err = s.PatientParts(ctx, "nobody")
		wantErr(t, "PatientParts(unknown)", err, store.ErrNotFound)
		_, _, err = s.PatientChanges(ctx, "nobody", 0, 10)
		wantErr(t, "PatientChanges(unknown)", err, store.ErrNotFound)
	}},
	{"UpdateLogsEachChangedItem", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		p := SamplePatient("pat-1", "ph-1", 3)
		must(t, "CreatePatient", s.CreatePatient(ctx, p))
		_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Medications[1].HowIUseIt = "1 tablet at bedtime" // in place, as handlers do
			p.Allergies = p.Allergies[1:]
			p.DoseSchedules = append(p.DoseSchedules, store.DoseSchedule{ID: "sch-new", MedicationID: p.Medications[0].ID, TimesOfDay: []int{480}})
			p.QuietHours.StartMinute = 21 * 60
			p.Devices = nil // not synced: no entry
			return p, nil
		})
		must(t, "UpdatePatient", err)
		cs, pv, err := s.PatientChanges(ctx, "pat-1", 0, 100)
		must(t, "PatientChanges", err)
		got := changeList(cs)
		want := []string{
			"1 profile  false",
			"2 medication " + p.Medications[1].ID + " false",
			"3 allergy " + p.Allergies[0].ID + " true",
			"4 dose_schedule sch-new false",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("changes = %q, want %q", got, want)
		}
		if pv.Head != 4 || pv.Latest(store.ChangeMedication, store.ChangeAllergy) != 3 || pv.Latest(store.ChangeActionItem) != 0 {
			t.Fatalf("head = %+v after the update", pv)
		}
		parts, err := s.PatientParts(ctx, "pat-1")
		must(t, "PatientParts", err)
		if parts.Head != 4 || parts.Kinds[store.ChangeProfile] != 1 || parts.Kinds[store.ChangeDoseSchedule] != 4 {
			t.Fatalf("PatientParts = %+v, want head 4, profile 1, dose_schedule 4", parts)
		}
		// A write that changes nothing synced logs nothing; a refused one neither.
		_, err = s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) { p.Devices = nil; return p, nil })
		must(t, "UpdatePatient(devices)", err)
		_, err = s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.OtherInformation = "refused"
			return p, errors.New("no")
		})
		if err == nil {
			t.Fatal("UpdatePatient with a failing fn: nil error")
		}
		if parts, _ := s.PatientParts(ctx, "pat-1"); parts.Head != 4 {
			t.Fatalf("head after writes that change nothing synced = %d, want 4", parts.Head)
		}
	}},
	{"RecordWithItsParts", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 3)))
		// A reader's record may be the cache's own (shared by readers);
		// a writer changing its record in place must not reach it.
		held, _, err := s.PatientWithParts(ctx, "pat-1")
		must(t, "PatientWithParts", err)
		heldWhy := held.Medications[2].WhyIUseIt
		want, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Medications[2].WhyIUseIt = "for my heart"
			p.OtherInformation = "changed"
			return p, nil
		})
		must(t, "UpdatePatient", err)
		if held.Medications[2].WhyIUseIt != heldWhy {
			t.Fatalf("a record read before the update changed under its reader: %q, was %q", held.Medications[2].WhyIUseIt, heldWhy)
		}
		got, pv, err := s.PatientWithParts(ctx, "pat-1")
		must(t, "PatientWithParts", err)
		if got.Version != want.Version || got.Medications[2].WhyIUseIt != "for my heart" || got.OtherInformation != "changed" {
			t.Fatalf("PatientWithParts record = version %d, %q, %q; want version %d as written", got.Version, got.Medications[2].WhyIUseIt, got.OtherInformation, want.Version)
		}
		parts, err := s.PatientParts(ctx, "pat-1")
		must(t, "PatientParts", err)
		if pv.Head == 0 || fmt.Sprint(pv) != fmt.Sprint(parts) {
			t.Fatalf("PatientWithParts parts = %+v, PatientParts = %+v: want the same, non-empty head", pv, parts)
		}
		_, _, err = s.PatientWithParts(ctx, "nobody")
		wantErr(t, "PatientWithParts(unknown)", err, store.ErrNotFound)
	}},
	{"PagesAndCursors", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 1)))
		for i := range 5 {
			_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
				p.OtherInformation = fmt.Sprint("note ", i)
				return p, nil
			})
			must(t, "UpdatePatient", err)
		}
		cs, pv, err := s.PatientChanges(ctx, "pat-1", 2, 2)
		must(t, "PatientChanges", err)
		if got := changeList(cs); fmt.Sprint(got) != fmt.Sprint([]string{"3 pml_notes  false", "4 pml_notes  false"}) || pv.Head != 5 {
			t.Fatalf("page after 2 = %q (head %d)", got, pv.Head)
		}
		cs, _, err = s.PatientChanges(ctx, "pat-1", 5, 10)
		must(t, "PatientChanges(head)", err)
		if len(cs) != 0 {
			t.Fatalf("changes after the head = %v", changeList(cs))
		}
		_, _, err = s.PatientChanges(ctx, "pat-1", 6, 10)
		wantErr(t, "PatientChanges(beyond the head)", err, store.ErrChangesTrimmed)
	}},
	{"KeepsTheNewestAndSaysWhenTrimmed", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 0)))
		const extra = 10
		_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Allergies = nil
			for i := range store.ChangeLogKeep + extra {
				p.Allergies = append(p.Allergies, store.Allergy{ID: fmt.Sprintf("alg-%04d", i), Kind: store.KindAllergy, Substance: "penicillin"})
			}
			return p, nil
		})
		must(t, "UpdatePatient", err)
		pv, err := s.PatientParts(ctx, "pat-1")
		must(t, "PatientParts", err)
		_, _, err = s.PatientChanges(ctx, "pat-1", 0, 10)
		wantErr(t, "PatientChanges(0) after trimming", err, store.ErrChangesTrimmed)
		cs, _, err := s.PatientChanges(ctx, "pat-1", pv.Oldest-1, store.ChangeLogKeep+extra)
		must(t, "PatientChanges(oldest-1)", err)
		if len(cs) != store.ChangeLogKeep || cs[len(cs)-1].Seq != pv.Head {
			t.Fatalf("kept %d entries ending at %d, want %d ending at the head %d", len(cs), cs[len(cs)-1].Seq, store.ChangeLogKeep, pv.Head)
		}
	}},
	{"ThreadWritesAreLogged", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient("pat-1", "ph-1", 0)))
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		_, _, _, err = s.AppendMessage(ctx, "th-1", message("acct-ph", "cm-2", "Yes, with food.", t0), func(t store.Thread) (store.Thread, error) {
			t.State = store.ThreadAnswered
			return t, nil
		})
		must(t, "AppendMessage", err)
		cs, pv, err := s.PatientChanges(ctx, "pat-1", 0, 10)
		must(t, "PatientChanges", err)
		if len(cs) < 2 || pv.Kinds[store.ChangeThread] != pv.Head {
			t.Fatalf("changes after two thread writes = %q (head %+v), want thread entries", changeList(cs), pv)
		}
		for _, c := range cs {
			if c.Kind != store.ChangeThread || c.ItemID != "th-1" {
				t.Fatalf("change %+v, want thread th-1", c)
			}
		}
	}},
}

func changeList(cs []store.Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, fmt.Sprint(c.Seq, " ", c.Kind, " ", c.ItemID, " ", c.Removed))
	}
	return out
}

package redisstore_test

import (
	"testing"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// TestCachedRecordsFollowOtherInstances: two stores over one Redis (two
// mtmd) each keep the records they decoded; a change one writes is what
// the other reads next, in GetPatient, ListPatients and UpdatePatient.
func TestCachedRecordsFollowOtherInstances(t *testing.T) {
	a, b, _ := twoStores(t)
	ctx := t.Context()
	if err := a.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
		t.Fatal(err)
	}
	for round, name := range []string{"Bea", "Cleo", "Dana"} {
		// a reads (and keeps) the record, b changes it, a reads again.
		if _, err := a.GetPatient(ctx, "pat-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.GivenName = name
			p.Medications[0].Name = name + "'s medicine"
			return p, nil
		}); err != nil {
			t.Fatal(err)
		}
		got, err := a.GetPatient(ctx, "pat-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.GivenName != name || got.Medications[0].Name != name+"'s medicine" || got.Version != int64(round+2) {
			t.Fatalf("round %d: a read %q, %q, version %d after b wrote %q (a stale cached record)", round, got.GivenName, got.Medications[0].Name, got.Version, name)
		}
		list, err := a.ListPatients(ctx, "ph-1", "", 10)
		if err != nil || len(list) != 1 || list[0].GivenName != name {
			t.Fatalf("round %d: a listed %+v, %v", round, list, err)
		}
	}
	// a's update starts from b's last write, not from what a had kept.
	up, err := a.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
		if p.GivenName != "Dana" {
			t.Errorf("a's update function got %q, want b's last write", p.GivenName)
		}
		p.Medications[0].Name = "changed in place"
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 5 {
		t.Errorf("version %d after four updates, want 5", up.Version)
	}
	got, _ := b.GetPatient(ctx, "pat-1")
	if got.Medications[0].Name != "changed in place" {
		t.Errorf("b read %q after a's update", got.Medications[0].Name)
	}
}

// TestCachedRecordsNotReadAfterKeyShredded: a patient's erasure deletes
// their wrapped data key before their record (crypto-shredding first; a
// delete that stops there leaves the record, unreadable). Another
// instance that had the record in its cache must not read it from there
// once the key is gone, in GetPatient, PatientWithParts or ListPatients.
func TestCachedRecordsNotReadAfterKeyShredded(t *testing.T) {
	a, _, raw := twoStores(t)
	ctx := t.Context()
	if err := a.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetPatient(ctx, "pat-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PatientWithParts(ctx, "pat-1"); err != nil {
		t.Fatal(err)
	}
	if list, err := a.ListPatients(ctx, "ph-1", "", 10); err != nil || len(list) != 1 {
		t.Fatalf("ListPatients: %d patients, %v", len(list), err)
	}
	keys, err := raw.Keys(ctx, "*p:pat-1}:key").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("the patient's data key: %q, %v", keys, err)
	}
	// What DeletePatient's second step does on another instance.
	if err := raw.Del(ctx, keys[0]).Err(); err != nil {
		t.Fatal(err)
	}
	if p, err := a.GetPatient(ctx, "pat-1"); err == nil {
		t.Errorf("GetPatient read %q after the data key was deleted (from the record cache)", p.GivenName)
	}
	if p, _, err := a.PatientWithParts(ctx, "pat-1"); err == nil {
		t.Errorf("PatientWithParts read %q after the data key was deleted (from the record cache)", p.GivenName)
	}
	if list, err := a.ListPatients(ctx, "ph-1", "", 10); err == nil && len(list) > 0 {
		t.Errorf("ListPatients read %q after the data key was deleted (from the record cache)", list[0].GivenName)
	}
}

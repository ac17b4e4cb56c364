package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// TestWorklistHealsStaleAndMissingEntries leaves what a process that died
// between writing a record and its work-list entry leaves: the entry
// missing, or an old entry still there. A list never shows a patient the
// record does not back, deletes such an entry, and ReindexPatient restores
// a missing one.
func TestWorklistHealsStaleAndMissingEntries(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { client.Close() })
	s, err := New(t.Context(), client, Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	due := store.Date{Year: 2026, Month: time.March, Day: 1}
	through := store.Date{Year: 2026, Month: time.December, Day: 31}
	if err := s.CreatePatient(ctx, store.Patient{ID: "pat-1", PharmacyID: "ph-1", Worklist: store.WorklistDates{CMRDue: due}}); err != nil {
		t.Fatal(err)
	}
	key := s.k.worklist("ph-1", store.WorklistCMRDue)
	list := func() []store.WorklistEntry {
		t.Helper()
		got, err := s.ListWorklist(ctx, "ph-1", store.WorklistCMRDue, through, store.WorklistCursor{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Stale: an entry under an old date, one of a patient who is gone,
	// one of a patient of another pharmacy.
	stale := []string{worklistMember(due.AddDays(-30), "pat-1"), worklistMember(due, "pat-gone")}
	if err := s.CreatePatient(ctx, store.Patient{ID: "pat-2", PharmacyID: "ph-2"}); err != nil {
		t.Fatal(err)
	}
	stale = append(stale, worklistMember(due, "pat-2"))
	for _, m := range stale {
		client.ZAdd(ctx, key, redis.Z{Member: m})
	}
	if got := list(); len(got) != 1 || got[0].Patient.ID != "pat-1" || got[0].Due != due {
		t.Fatalf("list with stale entries = %+v, want only pat-1 due %v", got, due)
	}
	for _, m := range stale {
		if err := client.ZScore(ctx, key, m).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("stale entry %q still indexed after a read (%v)", m, err)
		}
	}

	// Missing: the record was written, the entry never was.
	client.ZRem(ctx, key, worklistMember(due, "pat-1"))
	if got := list(); len(got) != 0 {
		t.Fatalf("list without the entry = %+v", got)
	}
	if err := s.ReindexPatient(ctx, "pat-1"); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 1 || got[0].Patient.ID != "pat-1" {
		t.Fatalf("list after ReindexPatient = %+v, want pat-1", got)
	}
}

package recordcache

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// fakeStore "stores" a patient as its id and given name, and counts the
// decodes the cache lets through.
type fakeStore struct {
	mu      sync.Mutex
	decodes int
}

func stored(id, name string) []byte { return []byte(id + "|" + name) }

func (f *fakeStore) decode(b []byte) (store.Patient, error) {
	f.mu.Lock()
	f.decodes++
	f.mu.Unlock()
	for i := range b {
		if b[i] == '|' {
			return store.Patient{ID: string(b[:i]), GivenName: string(b[i+1:]),
				Medications: []store.Medication{{Name: "metformin", History: []store.MedicationChange{{Reason: "start"}}}}}, nil
		}
	}
	return store.Patient{}, errors.New("bad record")
}

func TestHitSkipsDecodeAndReturnsOwnCopy(t *testing.T) {
	c, f := New(0, 0), &fakeStore{}
	first, err := c.Patient("p1", stored("p1", "Ana"), nil, f.decode)
	if err != nil {
		t.Fatal(err)
	}
	// The caller changes its record in place, as UpdatePatient's functions do.
	first.Medications[0].Name = "changed"
	first.Medications[0].History[0].Reason = "changed"
	second, err := c.Patient("p1", stored("p1", "Ana"), nil, f.decode)
	if err != nil {
		t.Fatal(err)
	}
	if f.decodes != 1 {
		t.Errorf("decodes = %d, want 1 (the second read should hit)", f.decodes)
	}
	want, _ := (&fakeStore{}).decode(stored("p1", "Ana"))
	if !reflect.DeepEqual(second, want) {
		t.Errorf("second read = %+v, want %+v (a caller's change leaked into the cache)", second, want)
	}
	second.Medications[0].Name = "again"
	third, _ := c.Patient("p1", stored("p1", "Ana"), nil, f.decode)
	if third.Medications[0].Name != "metformin" {
		t.Errorf("third read's medicine = %q: a hit's copy shares memory with the cache", third.Medications[0].Name)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 || s.Entries != 1 {
		t.Errorf("stats = %+v, want 2 hits, 1 miss, 1 entry", s)
	}
}

// TestChangedBytesMiss: another instance (or anyone) wrote the record: the
// new bytes are decoded, never answered from the old entry.
func TestChangedBytesMiss(t *testing.T) {
	c, f := New(0, 0), &fakeStore{}
	if _, err := c.Patient("p1", stored("p1", "Ana"), nil, f.decode); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Bea", "Anb", "Ana "} { // same length, one byte off, longer
		p, err := c.Patient("p1", stored("p1", name), nil, f.decode)
		if err != nil {
			t.Fatal(err)
		}
		if p.GivenName != name {
			t.Errorf("after the record changed to %q: read %q", name, p.GivenName)
		}
	}
	if f.decodes != 4 {
		t.Errorf("decodes = %d, want 4", f.decodes)
	}
	if p, _ := c.Patient("p1", stored("p1", "Ana "), nil, f.decode); p.GivenName != "Ana " || f.decodes != 4 {
		t.Errorf("the newest bytes should hit: %q, decodes %d", p.GivenName, f.decodes)
	}
}

func TestDecodeErrorNotKept(t *testing.T) {
	c, f := New(0, 0), &fakeStore{}
	for range 2 {
		if _, err := c.Patient("p1", []byte("garbage"), nil, f.decode); err == nil {
			t.Fatal("no error for an undecodable record")
		}
	}
	if f.decodes != 2 || c.Stats().Entries != 0 {
		t.Errorf("decodes %d, entries %d: a failed decode was cached", f.decodes, c.Stats().Entries)
	}
}

func TestBounds(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		c, f := New(2, 0), &fakeStore{}
		for _, id := range []string{"p1", "p2", "p1", "p3"} { // p1 used again: p2 is the oldest
			c.Patient(id, stored(id, "x"), nil, f.decode)
		}
		f.decodes = 0
		c.Patient("p1", stored("p1", "x"), nil, f.decode)
		c.Patient("p3", stored("p3", "x"), nil, f.decode)
		if f.decodes != 0 {
			t.Errorf("p1 and p3 should be kept; %d decodes", f.decodes)
		}
		c.Patient("p2", stored("p2", "x"), nil, f.decode)
		if f.decodes != 1 {
			t.Errorf("p2 should have been evicted; %d decodes", f.decodes)
		}
		if s := c.Stats(); s.Entries != 2 {
			t.Errorf("entries = %d, want 2", s.Entries)
		}
	})
	t.Run("stored bytes", func(t *testing.T) {
		c, f := New(100, 10), &fakeStore{} // "pN|x" is 4 bytes: two fit
		for i := range 5 {
			id := fmt.Sprintf("p%d", i)
			c.Patient(id, stored(id, "x"), nil, f.decode)
		}
		if s := c.Stats(); s.Entries != 2 || s.StoredBytes != 8 {
			t.Errorf("stats = %+v, want 2 entries of 8 bytes", s)
		}
		c.Patient("big", stored("big", "a name longer than the bound"), nil, f.decode)
		if s := c.Stats(); s.Entries != 2 || s.StoredBytes != 8 {
			t.Errorf("a record larger than the bound was kept or evicted others: %+v", s)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	c, f := New(3, 0), &fakeStore{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				id := fmt.Sprintf("p%d", (w+i)%5)
				p, err := c.Patient(id, stored(id, "x"), nil, f.decode)
				if err != nil || p.ID != id {
					t.Errorf("read %q: %+v, %v", id, p.ID, err)
					return
				}
				p.Medications[0].Name = "mine" // each reader owns its copy
			}
		}()
	}
	wg.Wait()
}

// TestForget: a deleted patient's clear record leaves memory with them.
func TestForget(t *testing.T) {
	c, f := New(0, 0), &fakeStore{}
	if _, err := c.Patient("p1", stored("p1", "Ana"), nil, f.decode); err != nil {
		t.Fatal(err)
	}
	c.Forget("p1")
	c.Forget("never-there")
	if s := c.Stats(); s.Entries != 0 || s.StoredBytes != 0 {
		t.Fatalf("after Forget: %+v, want empty", s)
	}
	if _, err := c.Patient("p1", stored("p1", "Ana"), nil, f.decode); err != nil || f.decodes != 2 {
		t.Fatalf("a forgotten record must be decoded again: decodes %d, %v", f.decodes, err)
	}
}

// TestSharedSkipsTheCopy: Shared answers from the same entries as Patient
// (a record decoded by one is a hit for the other) without copying, and
// what Patient returns afterwards is still the caller's own copy.
func TestSharedSkipsTheCopy(t *testing.T) {
	c, f := New(0, 0), &fakeStore{}
	a, err := c.Shared("p1", stored("p1", "Ana"), nil, f.decode)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Shared("p1", stored("p1", "Ana"), nil, f.decode)
	if f.decodes != 1 {
		t.Errorf("decodes = %d, want 1", f.decodes)
	}
	if &a.Medications[0] != &b.Medications[0] {
		t.Error("two shared reads of the same bytes hold different copies")
	}
	own, _ := c.Patient("p1", stored("p1", "Ana"), nil, f.decode)
	own.Medications[0].Name = "changed"
	if again, _ := c.Shared("p1", stored("p1", "Ana"), nil, f.decode); again.Medications[0].Name != "metformin" || f.decodes != 1 {
		t.Errorf("after a copy was changed the shared record reads %q (%d decodes)", again.Medications[0].Name, f.decodes)
	}
	if _, err := c.Shared("p1", stored("p1", "Bea"), nil, f.decode); err != nil || f.decodes != 2 {
		t.Errorf("changed bytes: %v, %d decodes, want a miss", err, f.decodes)
	}
	var none *Cache
	if p, err := none.Shared("p2", stored("p2", "Cy"), nil, f.decode); err != nil || p.GivenName != "Cy" {
		t.Errorf("nil cache: %+v, %v", p, err)
	}
}

// TestKeyedEntryNeedsTheSameKey: a record read with another key than the
// one it was decoded with (none: a patient's key deleted by their erasure;
// or a new one) is decoded again, so that decode decides, not the cache.
func TestKeyedEntryNeedsTheSameKey(t *testing.T) {
	c, f := New(0, 0), &fakeStore{}
	rec := stored("p1", "Ana")
	refuse := func([]byte) (store.Patient, error) { return store.Patient{}, errors.New("no data key") }
	if _, err := c.Patient("p1", rec, []byte("key-1"), f.decode); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Patient("p1", rec, []byte("key-1"), f.decode); err != nil || f.decodes != 1 {
		t.Fatalf("same bytes and key: %d decodes, %v; want a hit", f.decodes, err)
	}
	if _, err := c.Patient("p1", rec, nil, refuse); err == nil {
		t.Error("the record was read from the cache without its key")
	}
	if _, err := c.Shared("p1", rec, []byte("key-2"), refuse); err == nil {
		t.Error("the record was read from the cache with another key")
	}
	if _, err := c.Patient("p1", rec, nil, refuse); err == nil {
		t.Error("an unkeyed read found the keyed entry")
	}
}

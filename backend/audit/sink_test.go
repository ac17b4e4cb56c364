package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// TestFileSinkRotatesAndKeepsEveryEvent: the archive rotates by size and
// no event is lost or rewritten across files.
func TestFileSinkRotatesAndKeepsEveryEvent(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := NewFileSink(dir, 1024, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		ev := store.AuditEvent{ID: NewEventID(now.Add(time.Duration(i))), Time: now, ActorID: "ac_1", ActorRole: store.RolePharmacist,
			PatientID: "pt_1", Procedure: "/mtm.v1.CareService/GetPatientRecord", Allowed: i%2 == 0, Code: "ok"}
		if err := s.Write(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d files after %d events with a 1 KiB limit; want rotation", len(files), n)
	}
	seen := map[string]bool{}
	lines := 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := fh.Stat()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, info.Mode().Perm())
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("%s: not JSON: %q", f, sc.Text())
			}
			if line["patient_id"] != "pt_1" || !strings.HasPrefix(line["procedure"].(string), "/mtm.v1.") {
				t.Fatalf("line lacks fields: %v", line)
			}
			seen[line["id"].(string)] = true
			lines++
		}
		fh.Close()
	}
	if len(seen) != n || lines != n {
		t.Fatalf("archive holds %d lines of %d distinct events, want each of the %d events once", lines, len(seen), n)
	}
}

// TestFileSinkConcurrentWrites: writers that share file writes each get
// their own line in the archive, whole and once, and a file never passes
// its size limit by more than one batch.
func TestFileSinkConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := NewFileSink(dir, 8<<10, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := store.AuditEvent{ID: NewEventID(now.Add(time.Duration(w*each + i))), Time: now, ActorID: "ac_1",
					ActorRole: store.RolePatient, PatientID: "pt_1", Procedure: "/mtm.v1.PatientService/GetMedicationList", Allowed: true, Code: "ok"}
				if err := s.Write(context.Background(), ev); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var line map[string]any
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("%s: not a whole JSON line: %q", f, l)
			}
			seen[line["id"].(string)]++
		}
	}
	if len(seen) != writers*each {
		t.Errorf("archive holds %d distinct events, want %d", len(seen), writers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s written %d times", id, n)
		}
	}
	if len(files) < 2 {
		t.Errorf("%d files: want rotation at 8 KiB", len(files))
	}
}

func TestEventIDsSortByTime(t *testing.T) {
	a := NewEventID(time.Unix(100, 0))
	b := NewEventID(time.Unix(100, 1))
	c := NewEventID(time.Unix(1_900_000_000, 0))
	if !(a < b && b < c) {
		t.Fatalf("ids do not sort by time: %s %s %s", a, b, c)
	}
}

// TestEventLineFormat: the archive's line format is the operators'
// contract; field names, order and the time's form do not change.
func TestEventLineFormat(t *testing.T) {
	ev := store.AuditEvent{ID: "0188a", Time: time.Date(2026, 11, 30, 9, 5, 0, 120000000, time.FixedZone("EST", -5*3600)),
		ActorID: "ac_1", ActorRole: store.RoleCaregiver, PatientID: "pt_1", Procedure: "/mtm.v1.PatientService/GetMedicationList",
		Allowed: true, Outcome: store.OutcomeAllowed, Code: "ok", RequestID: "rq_1", ClientAddr: "10.0.0.1", Reason: "<none>"}
	line, err := eventLine(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0188a","time":"2026-11-30T14:05:00.12Z","actor_id":"ac_1","actor_role":"caregiver","patient_id":"pt_1",` +
		`"procedure":"/mtm.v1.PatientService/GetMedicationList","allowed":true,"outcome":"allowed","code":"ok","request_id":"rq_1",` +
		`"client_addr":"10.0.0.1","reason":"\u003cnone\u003e"}` + "\n"
	if string(line) != want {
		t.Errorf("line:\n got %s\nwant %s", line, want)
	}
}

// TestFileSinkRestartWithinTheSameSecond: mtmd started again within the
// second its previous run started (a quick restart) opens a file of its
// own; it used to fail to start ("file exists"), and must never reopen
// or overwrite the earlier run's archive.
func TestFileSinkRestartWithinTheSameSecond(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	ev := store.AuditEvent{ID: NewEventID(now), Time: now, ActorID: "ac_1", ActorRole: store.RolePharmacist,
		PatientID: "pt_1", Procedure: "/mtm.v1.CareService/GetPatientRecord", Allowed: true, Code: "ok"}
	for run := range 2 {
		s, err := NewFileSink(dir, 0, clock)
		if err != nil {
			t.Fatalf("start %d in the same second: %v", run+1, err)
		}
		if err := s.Write(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files %v, want one per run", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n != 1 {
			t.Errorf("%s holds %d lines, want its own run's one", f, n)
		}
	}
}

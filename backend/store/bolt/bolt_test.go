package bolt_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// open opens a store in path and closes it when the test ends.
func open(t testing.TB, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// scanned is a store whose raw bytes the conformance suite can scan: the
// whole bbolt file, read after Close (storetest.RawScanner).
type scanned struct {
	*bolt.Store
	path string
}

func (s scanned) RawBytes(t *testing.T) [][]byte {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{b}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "mtm.db")
		return scanned{open(t, path), path}
	})
}

// TestConformanceWithWritesRunTwice is the conformance suite with every
// write function run twice, the first time rolled back: what a write
// goes through when another write of its shared commit fails. It fails
// when a write keeps something from a run that did not commit (a count,
// a list, a flag) or a callback counts on running once.
func TestConformanceWithWritesRunTwice(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "mtm.db")
		s := open(t, path)
		s.RehearseWrites()
		return scanned{s, path}
	})
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtm.db")
	open(t, path)
	start := time.Now()
	s, err := bolt.Open(path, bolt.Options{Logger: discard(), Timeout: 200 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, bolt.ErrInUse) {
		t.Fatalf("second Open: got %v, want an error wrapping ErrInUse", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("second Open took %v, want about the 200ms timeout", took)
	}
	t.Logf("second Open: %v", err)
}

// TestSecondProcessFailsFast runs the test binary again as a second process
// that opens the same file, as a second mtmd on the same data dir would.
func TestSecondProcessFailsFast(t *testing.T) {
	if path := os.Getenv("MTM_BOLT_SECOND_OPEN"); path != "" {
		_, err := bolt.Open(path, bolt.Options{Logger: discard(), Timeout: 200 * time.Millisecond})
		fmt.Print(err)
		if errors.Is(err, bolt.ErrInUse) {
			os.Exit(0)
		}
		os.Exit(1)
	}
	path := filepath.Join(t.TempDir(), "mtm.db")
	open(t, path)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSecondProcessFailsFast$")
	cmd.Env = append(os.Environ(), "MTM_BOLT_SECOND_OPEN="+path)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("second process: %v; output %q", err, out)
	}
	if !strings.Contains(string(out), "in use by another mtmd") {
		t.Fatalf("second process error %q does not say the data dir is in use", out)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("second process took %v to give up", took)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mtm.db")
	s, err := bolt.Open(path, bolt.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.SamplePatient("pat-1", "ph-1", 20)
	if err := s.CreatePatient(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	got, err := s.GetPatient(ctx, "pat-1")
	if err != nil {
		t.Fatalf("GetPatient after reopen: %v", err)
	}
	if len(got.Medications) != 20 || got.Medications[19].Name != want.Medications[19].Name || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("after reopen got %d medications, last %q, updated %v", len(got.Medications), got.Medications[19].Name, got.UpdatedAt)
	}
	list, err := s.ListPatients(ctx, "ph-1", "", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListPatients after reopen = %d patients, %v; want 1", len(list), err)
	}
}

package suite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
	"github.com/mtmapp/mtm/loadtest/seed"
)

// sealedStore opens a sealed bbolt store in a temporary directory (with
// a new key-encryption key file) and seeds a small population.
func sealedStore(t *testing.T) (store.Store, seed.Population) {
	t.Helper()
	dir := t.TempDir()
	st, err := openForSeeding(context.Background(), filepath.Join(dir, "data"), "", filepath.Join(dir, "kek.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pop, err := seed.Seed(context.Background(), st, seed.Options{Patients: 32, PatientsPerPharmacy: 16, Now: time.Now(), Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	return st, pop
}

// confirm records, through the store, the 8:00 dose of the patient's
// first schedule today, and logs it as acknowledged when sent.
func confirm(t *testing.T, st store.Store, log *scenario.DoseLog, pt seed.Patient, sent time.Time) string {
	t.Helper()
	zone, err := time.LoadLocation(pt.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	occ := scenario.DoseOccurrenceID(pt.DoseSchedules[0], time.Now(), zone)
	_, _, at, err := store.ParseOccurrenceID(occ)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDose(context.Background(), store.DoseRecord{PatientID: pt.ID, OccurrenceID: occ, Occurrence: at,
		Outcome: store.DoseTaken, RecordedBy: pt.ID, RecordedAt: time.Now()}, 600); err != nil {
		t.Fatal(err)
	}
	log.Ack(pt.ID, occ, sent)
	return occ
}

func withSchedules(pop seed.Population) []seed.Patient {
	var out []seed.Patient
	for _, p := range pop.Patients {
		if len(p.DoseSchedules) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// The read-back after rotation under load passes when every acknowledged
// confirmation is there, and fails the run when one is missing, when the
// store holds an older copy than the last acknowledged write, or when a
// patient's record does not open.
func TestNoLostWritesCheck(t *testing.T) {
	st, pop := sealedStore(t)
	ctx := context.Background()
	pts := withSchedules(pop)
	if len(pts) < 3 {
		t.Fatalf("%d seeded patients with dose schedules, want 3", len(pts))
	}
	var log scenario.DoseLog
	for _, pt := range pts {
		confirm(t, st, &log, pt, time.Now())
	}
	run := loadtest.StoreRun{Figures: map[string]float64{FigureRotationPasses: 1}}
	if err := checkNoLostWrites(ctx, st, log.Acks(), pop, run.Figures); err != nil {
		t.Fatalf("every write there: %v", err)
	}
	if err := RotationFailed(run); err != nil {
		t.Fatalf("every write there: RotationFailed: %v", err)
	}
	if got := run.Figures[FigureRotationDosesAcked]; got != float64(len(pts)) {
		t.Errorf("%v confirmations checked, want %d", got, len(pts))
	}

	// A confirmation acknowledged but not in the store.
	missing := log.Acks()
	missing[scenario.DoseAck{PatientID: pts[0].ID, OccurrenceID: "d." + pts[0].DoseSchedules[0] + ".zzzzzz"}] = time.Now()
	// One whose stored copy is older than the last acknowledged write.
	occ := confirm(t, st, &log, pts[1], time.Now())
	missing[scenario.DoseAck{PatientID: pts[1].ID, OccurrenceID: occ}] = time.Now().Add(time.Second)
	// A patient whose record does not open.
	gone := pop
	gone.Patients = append(append([]seed.Patient(nil), pop.Patients...), seed.Patient{ID: "pat-never-seeded"})
	run = loadtest.StoreRun{Figures: map[string]float64{FigureRotationPasses: 1}}
	err := checkNoLostWrites(ctx, st, missing, gone, run.Figures)
	if err == nil || !strings.Contains(err.Error(), "2 of") || !strings.Contains(err.Error(), "1 of 33 patients failed to open") {
		t.Fatalf("one confirmation missing, one stale, one patient gone: %v", err)
	}
	err = RotationFailed(run)
	if err == nil || !strings.Contains(err.Error(), "2 of") || !strings.Contains(err.Error(), "1 of 33 seeded patients failed to open") {
		t.Fatalf("RotationFailed: %v, want the lost confirmations and the unreadable patient", err)
	}
}

// failingStep is a store whose re-encryption fails at its second step.
type failingStep struct {
	store.Store
	steps int
}

func (f *failingStep) Reencrypt(ctx context.Context, cursor string, opts store.ReencryptOptions) (store.ReencryptPage, error) {
	if f.steps++; f.steps == 2 {
		return store.ReencryptPage{}, errors.New("disk on fire")
	}
	return f.Store.Reencrypt(ctx, cursor, opts)
}

// The rotation completes passes that rotate every data key and reseal
// the values; a failed step fails the run, even though the passes go on.
func TestRotationPassesAndAFailedStep(t *testing.T) {
	st, pop := sealedStore(t)
	var log scenario.DoseLog
	confirm(t, st, &log, withSchedules(pop)[0], time.Now())

	waitPasses := func(r *rotator, n int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for r.passes.Load() < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	r := startRotation(context.Background(), st, 8)
	waitPasses(r, 2)
	run := loadtest.StoreRun{Figures: map[string]float64{}}
	if err := r.stop(run.Figures); err != nil {
		t.Fatal(err)
	}
	if err := checkNoLostWrites(context.Background(), st, log.Acks(), pop, run.Figures); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if err := RotationFailed(run); err != nil {
		t.Fatal(err)
	}
	if run.Figures[FigureRotationPasses] < 2 || run.Figures[FigureRotationPatients] < 64 || run.Figures[FigureRotationResealed] == 0 || run.Figures[FigureRotationRetired] == 0 {
		t.Fatalf("figures after two passes over 32 patients: %v", run.Figures)
	}

	r = startRotation(context.Background(), &failingStep{Store: st}, 8)
	waitPasses(r, 1)
	run = loadtest.StoreRun{Figures: map[string]float64{}}
	if err := r.stop(run.Figures); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("stop after a failed step: %v", err)
	}
	if err := checkNoLostWrites(context.Background(), st, log.Acks(), pop, run.Figures); err != nil {
		t.Fatal(err)
	}
	if err := RotationFailed(run); err == nil || !strings.Contains(err.Error(), "1 re-encryption steps failed") {
		t.Fatalf("RotationFailed after a failed step: %v", err)
	}
	if run.Figures[FigureRotationPasses] < 1 {
		t.Fatalf("the pass resumed after the failed step: %v", run.Figures)
	}
}

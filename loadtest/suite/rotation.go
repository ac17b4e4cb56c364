package suite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/scenario"
	"github.com/mtmapp/mtm/loadtest/seed"
)

// Figures of rotation under load (Config.ReencryptDuring): re-encryption
// passes with data-key rotation, `mtmctl reencrypt --rotate`'s calls, run
// on the deployment's Redis while the API phases run, then a check that
// no acknowledged write was lost and every patient's record still opens.
const (
	FigureRotationPasses   = "rotation under load: complete re-encryption passes (--rotate)"
	FigureRotationPatients = "rotation under load: patients gone through"
	FigureRotationResealed = "rotation under load: values resealed"
	FigureRotationRetired  = "rotation under load: key versions retired"
	FigureRotationErrors   = "rotation under load: failed re-encryption steps"
	// FigureRotationDosesAcked is how many distinct dose confirmations
	// the API acknowledged during the run; FigureRotationLostDoses how
	// many of them the store no longer holds (missing, unreadable, or
	// older than the last acknowledged write).
	FigureRotationDosesAcked = "rotation under load: dose confirmations acknowledged (distinct)"
	FigureRotationLostDoses  = "rotation under load: acknowledged dose confirmations lost or unreadable"
	// FigureRotationPatientsRead is how many seeded patients' records
	// were read back; FigureRotationUnreadable how many failed.
	FigureRotationPatientsRead = "rotation under load: seeded patients read back"
	FigureRotationUnreadable   = "rotation under load: seeded patients that failed to open"
)

// rotationStep is the patients per re-encryption step: small, so that the
// pass interleaves finely with the API's writes.
const rotationStep = 25

// rotator runs re-encryption passes with RotateDataKeys, one step at a
// time, until stopped.
type rotator struct {
	st     store.AtRest
	limit  int
	cancel context.CancelFunc
	done   chan struct{}

	passes, patients, resealed, retired, failed atomic.Int64
	mu                                          sync.Mutex
	firstErr                                    error
}

// startRotation starts the passes on st in the background; stop ends them
// after the current step.
func startRotation(ctx context.Context, st store.AtRest, limit int) *rotator {
	ctx, cancel := context.WithCancel(ctx)
	r := &rotator{st: st, limit: limit, cancel: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	return r
}

// loop is `mtmctl reencrypt --rotate` over and over: each pass starts at
// the empty cursor and follows Next until it is empty. A failed step is
// counted and retried from the same cursor (as an operator re-running the
// command would), after a pause.
func (r *rotator) loop(ctx context.Context) {
	defer close(r.done)
	opts := store.ReencryptOptions{Limit: r.limit, RotateDataKeys: true}
	cursor := ""
	for ctx.Err() == nil {
		page, err := r.st.Reencrypt(context.WithoutCancel(ctx), cursor, opts)
		if err != nil {
			r.failed.Add(1)
			r.mu.Lock()
			if r.firstErr == nil {
				r.firstErr = fmt.Errorf("step at cursor %q: %w", cursor, err)
			}
			r.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		r.patients.Add(int64(page.Patients))
		r.resealed.Add(int64(page.Resealed))
		r.retired.Add(int64(page.Retired))
		if cursor = page.Next; cursor == "" {
			r.passes.Add(1)
		}
	}
}

// stop ends the passes after the current step and adds their figures to
// figures; it returns the first failed step's error, if any.
func (r *rotator) stop(figures map[string]float64) error {
	r.cancel()
	<-r.done
	figures[FigureRotationPasses] = float64(r.passes.Load())
	figures[FigureRotationPatients] = float64(r.patients.Load())
	figures[FigureRotationResealed] = float64(r.resealed.Load())
	figures[FigureRotationRetired] = float64(r.retired.Load())
	figures[FigureRotationErrors] = float64(r.failed.Load())
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstErr
}

// checkNoLostWrites reads back, through st, every dose confirmation in
// acks (each must be there, taken, and recorded no earlier than its last
// acknowledged call was sent: a re-encryption that wrote back an older
// copy would show as an older RecordedAt) and every patient of pop (each
// record must open), and adds the counts to figures. It returns an error
// describing the first few problems, nil when there are none.
func checkNoLostWrites(ctx context.Context, st store.Store, acks map[scenario.DoseAck]time.Time, pop seed.Population, figures map[string]float64) error {
	var (
		mu               sync.Mutex
		problems         []error
		lost, unreadable int
	)
	note := func(counter *int, err error) {
		mu.Lock()
		defer mu.Unlock()
		*counter++
		if len(problems) < 5 {
			problems = append(problems, err)
		}
	}
	type ack struct {
		scenario.DoseAck
		sent time.Time
	}
	doses := make([]ack, 0, len(acks))
	for k, sent := range acks {
		doses = append(doses, ack{k, sent})
	}
	eachOf(len(doses), func(i int) {
		k, sent := doses[i], doses[i].sent
		d, err := st.GetDose(ctx, k.PatientID, k.OccurrenceID)
		switch {
		case err != nil:
			note(&lost, fmt.Errorf("dose %s of patient %s: %w", k.OccurrenceID, k.PatientID, err))
		case d.Outcome != store.DoseTaken || d.RecordedAt.Before(sent):
			note(&lost, fmt.Errorf("dose %s of patient %s: holds %q recorded at %s, but a confirmation sent at %s was acknowledged",
				k.OccurrenceID, k.PatientID, d.Outcome, d.RecordedAt.Format(time.RFC3339Nano), sent.Format(time.RFC3339Nano)))
		}
	})
	figures[FigureRotationDosesAcked] = float64(len(acks))
	figures[FigureRotationLostDoses] = float64(lost)
	eachOf(len(pop.Patients), func(i int) {
		id := pop.Patients[i].ID
		if _, err := st.GetPatient(ctx, id); err != nil {
			note(&unreadable, fmt.Errorf("patient %s: %w", id, err))
		}
	})
	figures[FigureRotationPatientsRead] = float64(len(pop.Patients))
	figures[FigureRotationUnreadable] = float64(unreadable)
	if lost > 0 || unreadable > 0 {
		return fmt.Errorf("%d of %d acknowledged dose confirmations lost or unreadable, %d of %d patients failed to open: %w",
			lost, len(acks), unreadable, len(pop.Patients), errors.Join(problems...))
	}
	return nil
}

// eachOf calls f for 0…n-1, eight at a time.
func eachOf(n int, f func(i int)) {
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}

// RotationFailed reports a run whose rotation under load failed a step,
// lost an acknowledged write, left a patient unreadable, or did not
// complete a single pass; nil for a run without rotation.
func RotationFailed(run loadtest.StoreRun) error {
	passes, ok := run.Figures[FigureRotationPasses]
	if !ok {
		return nil
	}
	var errs []error
	if n := run.Figures[FigureRotationErrors]; n > 0 {
		errs = append(errs, fmt.Errorf("%.0f re-encryption steps failed", n))
	}
	if n := run.Figures[FigureRotationLostDoses]; n > 0 {
		errs = append(errs, fmt.Errorf("%.0f of %.0f acknowledged dose confirmations lost or unreadable", n, run.Figures[FigureRotationDosesAcked]))
	}
	if n := run.Figures[FigureRotationUnreadable]; n > 0 {
		errs = append(errs, fmt.Errorf("%.0f of %.0f seeded patients failed to open", n, run.Figures[FigureRotationPatientsRead]))
	}
	if run.Figures[FigureRotationDosesAcked] == 0 {
		errs = append(errs, errors.New("no dose confirmation was acknowledged: nothing to check for lost writes"))
	}
	if passes < 1 {
		errs = append(errs, errors.New("no re-encryption pass completed during the phases (longer --phase or fewer --patients)"))
	}
	return errors.Join(errs...)
}

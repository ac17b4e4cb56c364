package redisstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// pipelineHook counts the scripts each pipeline carries once armed (every
// script call goes through the shared pipeline, the tests' setup too) and
// can hold the first such pipeline until the test lets it go.
type pipelineHook struct {
	sizes   chan int
	holdOne chan struct{} // closed: no holding
	armed   atomic.Bool
	held    atomic.Bool
}

func (h *pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, c := range cmds {
			if c.Name() == "evalsha" || c.Name() == "eval" {
				n++
			}
		}
		if n > 0 && h.armed.Load() {
			if h.held.CompareAndSwap(false, true) {
				<-h.holdOne
			}
			h.sizes <- n
		}
		return next(ctx, cmds)
	}
}

// hookedStore is a store on a private server whose client counts (and
// can hold) the pipelines that carry scripts.
func hookedStore(t *testing.T) (*Store, *redis.Client, *pipelineHook) {
	addr, _ := redistest.StartServer(t)
	hook := &pipelineHook{sizes: make(chan int, 1000), holdOne: make(chan struct{})}
	client := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	client.AddHook(hook)
	t.Cleanup(func() { client.Close() })
	s, err := New(t.Context(), client, Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	return s, client, hook
}

// TestConcurrentAuditAppendsShareAPipeline: 64 calls arriving while one
// append is out go out together in the next pipeline, and every one of
// them lands in its own patient's window exactly once, including after the
// server lost its scripts (SCRIPT FLUSH, as after a restart).
func TestConcurrentAuditAppendsShareAPipeline(t *testing.T) {
	s, client, hook := hookedStore(t)
	ctx := t.Context()
	const patients, perPatient, keep = 8, 8, 5
	for p := range patients {
		if err := s.CreatePatient(ctx, store.Patient{ID: fmt.Sprintf("pat-%d", p), PharmacyID: "ph-1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	hook.armed.Store(true)
	event := func(p, i int) store.AuditEvent {
		return store.AuditEvent{ID: fmt.Sprintf("01JD8Y3Q2W-%03d", i), Time: time.Unix(int64(1_800_000_000+i), 0),
			ActorID: "acct-1", ActorRole: store.RoleCaregiver, PatientID: fmt.Sprintf("pat-%d", p),
			Procedure: "/mtm.v1.PatientService/GetMedicationList", Allowed: true, Outcome: store.OutcomeAllowed, Code: "ok"}
	}
	// The first append goes out alone and is held there until all the
	// others are queued behind it.
	errs := make(chan error, patients*perPatient)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- s.AppendAuditEvent(ctx, event(0, 0), keep) })
	for deadline := time.Now().Add(10 * time.Second); !hook.held.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first append never went out in a pipeline")
		}
	}
	for p := range patients {
		for i := range perPatient {
			if p == 0 && i == 0 {
				continue
			}
			wg.Go(func() { errs <- s.AppendAuditEvent(ctx, event(p, i), keep) })
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		queued := s.scriptCalls.Queued()
		if queued == patients*perPatient-1 { // all but the held one
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", queued, patients*perPatient-1)
		}
	}
	close(hook.holdOne)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("AppendAuditEvent: %v", err)
		}
	}
	close(hook.sizes)
	var sizes []int
	for n := range hook.sizes {
		sizes = append(sizes, n)
	}
	if len(sizes) < 2 || sizes[0] != 1 || sizes[1] != patients*perPatient-1 {
		t.Fatalf("appendAudit scripts per pipeline = %v, want 1 (the held one) then %d together", sizes, patients*perPatient-1)
	}
	for p := range patients {
		evs, err := s.ListAuditEvents(ctx, fmt.Sprintf("pat-%d", p), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range evs {
			got = append(got, ev.ID)
		}
		var want []string
		for i := perPatient - 1; i >= perPatient-keep; i-- {
			want = append(want, event(p, i).ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pat-%d window = %v, want the newest %d: %v", p, got, keep, want)
		}
	}
}

// TestConcurrentRecordReadsShareAPipeline: the app's record reads
// (PatientWithParts) queued behind a pipeline go out together with the
// audit appends queued with them, and each caller gets its own patient's
// record and change-log head: a reply handed to the wrong caller would
// show one patient another's medicines.
func TestConcurrentRecordReadsShareAPipeline(t *testing.T) {
	s, client, hook := hookedStore(t)
	ctx := t.Context()
	const patients = 24
	want := make([]store.PartVersions, patients)
	for p := range patients {
		id := fmt.Sprintf("pat-%d", p)
		if err := s.CreatePatient(ctx, store.Patient{ID: id, PharmacyID: "ph-1", OtherInformation: "notes of " + id,
			Medications: []store.Medication{{ID: "md-1", Name: "Medicine of " + id, Version: 1}}}); err != nil {
			t.Fatal(err)
		}
		for range p % 3 { // different change-log heads
			if _, err := s.UpdatePatient(ctx, id, func(pt store.Patient) (store.Patient, error) {
				pt.OtherInformation += "."
				return pt, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		pv, err := s.PatientParts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = pv
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil { // as after a restart
		t.Fatal(err)
	}
	hook.armed.Store(true)
	errs := make(chan error, 2*patients+1)
	var wg sync.WaitGroup
	read := func(p int) {
		id := fmt.Sprintf("pat-%d", p)
		pt, pv, err := s.PatientWithParts(ctx, id)
		switch {
		case err != nil:
			errs <- fmt.Errorf("PatientWithParts(%s): %w", id, err)
		case pt.ID != id || len(pt.Medications) != 1 || pt.Medications[0].Name != "Medicine of "+id:
			errs <- fmt.Errorf("PatientWithParts(%s) answered %s's record (%v)", id, pt.ID, pt.Medications)
		case fmt.Sprint(pv) != fmt.Sprint(want[p]):
			errs <- fmt.Errorf("PatientWithParts(%s) head %+v, want %+v", id, pv, want[p])
		default:
			errs <- nil
		}
	}
	wg.Go(func() { read(0) })
	for deadline := time.Now().Add(10 * time.Second); !hook.held.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first read never went out in a pipeline")
		}
	}
	for p := 1; p < patients; p++ {
		wg.Go(func() { read(p) })
		wg.Go(func() {
			errs <- s.AppendAuditEvent(ctx, store.AuditEvent{ID: fmt.Sprintf("01JD8Y3Q2W-%03d", p), Time: time.Unix(1_800_000_000, 0),
				ActorID: "acct-1", ActorRole: store.RolePatient, PatientID: fmt.Sprintf("pat-%d", p),
				Procedure: "/mtm.v1.PatientService/GetMedicationList", Allowed: true, Outcome: store.OutcomeAllowed, Code: "ok"}, 5)
		})
	}
	for deadline := time.Now().Add(10 * time.Second); s.scriptCalls.Queued() < 2*(patients-1); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", s.scriptCalls.Queued(), 2*(patients-1))
		}
	}
	close(hook.holdOne)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	close(hook.sizes)
	var sizes []int
	for n := range hook.sizes {
		sizes = append(sizes, n)
	}
	if len(sizes) < 2 || sizes[0] != 1 || sizes[1] != 2*(patients-1) {
		t.Fatalf("scripts per pipeline = %v, want 1 (the held read) then %d reads and appends together", sizes, 2*(patients-1))
	}
}

package batch

import (
	"runtime"
	"slices"
	"sync"
	"testing"
)

type op struct {
	n    int
	done bool
	runs int
}

// TestOperationsQueuedBehindABatchRunTogether: while one batch runs, the
// operations that arrive wait and then run together (at most Max per
// batch), each exactly once, and every caller returns only after its own
// operation ran.
func TestOperationsQueuedBehindABatchRunTogether(t *testing.T) {
	g := &Group[*op]{Max: 20}
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	first := true
	run := func(ops []*op) {
		mu.Lock()
		hold := first
		first = false
		sizes = append(sizes, len(ops))
		mu.Unlock()
		if hold {
			<-release // the first batch runs until the others are queued
		}
		for _, o := range ops {
			o.runs++
			o.done = true
		}
	}
	ops := make([]*op, 50)
	for i := range ops {
		ops[i] = &op{n: i}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		g.Do(ops[0], run)
		if !ops[0].done {
			t.Error("Do returned before its operation ran")
		}
	})
	for queued := false; !queued; {
		g.mu.Lock()
		queued = g.busy
		g.mu.Unlock()
		runtime.Gosched()
	}
	for _, o := range ops[1:] {
		wg.Go(func() {
			g.Do(o, run)
			if !o.done {
				t.Errorf("Do of operation %d returned before it ran", o.n)
			}
		})
	}
	for g.Queued() < len(ops)-1 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for _, o := range ops {
		if o.runs != 1 {
			t.Errorf("operation %d ran %d times, want once", o.n, o.runs)
		}
	}
	if want := []int{1, 20, 20, 9}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v (the first alone, then the 49 queued behind it, at most 20 at a time)", sizes, want)
	}
	if g.busy || len(g.queue) != 0 {
		t.Errorf("after the last batch: busy %v, %d queued; want idle", g.busy, len(g.queue))
	}
}

// TestAnOperationAloneRunsAtOnce: with nothing running, an operation runs
// in its own batch, by its own caller.
func TestAnOperationAloneRunsAtOnce(t *testing.T) {
	var g Group[*op]
	o := &op{}
	g.Do(o, func(ops []*op) {
		if len(ops) != 1 || ops[0] != o {
			t.Errorf("batch %v, want just the one operation", ops)
		}
		o.done = true
	})
	if !o.done {
		t.Fatal("the operation did not run")
	}
}

// Package batch runs the small independent operations of concurrent
// callers in shared batches: one transaction and one fsync (bbolt's group
// commit), or one pipeline and one round trip (Redis audit appends), for
// every operation that arrived while the previous batch was running.
//
// It adds no delay: an operation that finds nothing running goes at once,
// alone. There is no background goroutine: the first waiting caller runs
// the batch (its own operation included) and hands the next batch to the
// first operation queued behind it.
package batch

import "sync"

// Group queues operations of type T (usually pointers that carry their own
// result) into batches. The zero value is ready to use; a Group must not
// be copied after first use.
type Group[T any] struct {
	// Max bounds how many operations share one batch (0: no bound), so
	// one batch, and the wait of those queued behind it, stays short.
	Max int

	mu    sync.Mutex
	queue []*waiter[T]
	busy  bool // a caller is running a batch; the queue waits for handoff
}

type waiter[T any] struct {
	op T
	// signal receives true when this caller must run the next batch,
	// false when its operation has run.
	signal chan bool
}

// Do queues op and returns once a batch holding it has run: run is called
// with the batch's operations in arrival order, by one of the callers, and
// must record each operation's result in the operation itself (it must not
// panic). Every caller of one Group should pass the same run.
func (g *Group[T]) Do(op T, run func([]T)) {
	w := &waiter[T]{op: op, signal: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead && !<-w.signal {
		return
	}

	// Lead: run the queue's head (w is in it), then hand over.
	g.mu.Lock()
	n := len(g.queue)
	if g.Max > 0 {
		n = min(n, g.Max)
	}
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	ops := make([]T, len(batch))
	for i, b := range batch {
		ops[i] = b.op
	}
	run(ops)
	for _, b := range batch {
		if b != w {
			b.signal <- false
		}
	}

	g.mu.Lock()
	var next *waiter[T]
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.busy, g.queue = false, nil
	}
	g.mu.Unlock()
	if next != nil {
		next.signal <- true
	}
}

// Queued reports how many operations wait for the next batch.
func (g *Group[T]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

package bolt

import (
	"fmt"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// maxGroupCommit bounds how many writes share one transaction, so one
// commit (and the wait of the writes queued behind it) stays short.
const maxGroupCommit = 256

// groupCommit runs small independent writes from many goroutines in
// shared read-write transactions: one commit, and one fsync, for every
// write that arrived while the previous commit was running. It adds no
// delay: a write that finds nothing running commits at once, alone.
//
// Each write returns only once the transaction holding it has committed
// (durably, unless the store was opened with NoSync), exactly as if it had
// run in its own transaction. A write function may run more than once:
// when another write of the same group fails, the transaction is rolled
// back and the remaining writes run again in a fresh one. It must
// therefore read everything it depends on from the transaction it is
// handed and change nothing outside it. Writes of one group see each
// other's effects in arrival order.
//
// There is no background goroutine: the first waiting caller commits the
// group (its own write included) and hands the next group to the first
// write queued behind it.
type groupCommit struct {
	db *bbolt.DB

	mu    sync.Mutex
	queue []*groupWrite
	busy  bool // a caller is committing; the queue waits for handoff
}

// groupWrite is one caller's write and, once the group has committed, its
// result.
type groupWrite struct {
	fn  func(*bbolt.Tx) error
	err error
	// signal receives true when this caller must commit the next group,
	// false when its write is done (err set).
	signal chan bool
}

// update runs fn in a transaction shared with the writes of concurrent
// callers and returns fn's error or the commit's.
func (g *groupCommit) update(fn func(*bbolt.Tx) error) error {
	w := &groupWrite{fn: fn, signal: make(chan bool, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead && !<-w.signal {
		return w.err
	}

	// Lead: commit the queue's head (w is in it), then hand over.
	g.mu.Lock()
	n := min(len(g.queue), maxGroupCommit)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	g.commit(group, w)

	g.mu.Lock()
	var next *groupWrite
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.busy, g.queue = false, nil
	}
	g.mu.Unlock()
	if next != nil {
		next.signal <- true
	}
	return w.err
}

// commit runs group's writes in one transaction. A write that fails is
// taken out with its error and the others run again without it.
func (g *groupCommit) commit(group []*groupWrite, self *groupWrite) {
	done := func(w *groupWrite, err error) {
		w.err = err
		if w != self {
			w.signal <- false
		}
	}
	for len(group) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for i, w := range group {
				if err := safelyRun(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			err = diskFailure(err)
			for _, w := range group {
				done(w, err)
			}
			return
		}
		done(group[failed], err)
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// safelyRun turns a panic of fn into an error, so that a panic in one
// write cannot leave the callers waiting on its group blocked forever.
func safelyRun(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in write: %v", p)
		}
	}()
	return fn(tx)
}

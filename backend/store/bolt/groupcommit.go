package bolt

import (
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store/batch"
)

// maxGroupCommit bounds how many writes share one transaction, so one
// commit (and the wait of the writes queued behind it) stays short.
const maxGroupCommit = 256

// groupCommit runs the writes of many goroutines (every Store.update and
// audit append) in shared read-write transactions (batch.Group): one
// commit, and one fsync, for every write that arrived while the previous
// commit was running. bbolt has one writer at a time anyway; sharing the
// commit is what lets a refresh, a dose and the audit events of a dozen
// reads cost one fsync between them, not one each.
//
// Each write returns only once the transaction holding it has committed
// (durably, unless the store was opened with NoSync), exactly as if it had
// run in its own transaction. A write function may run more than once:
// when another write of the same group fails, the transaction is rolled
// back and the remaining writes run again in a fresh one. It must
// therefore read everything it depends on from the transaction it is
// handed and change nothing outside it. Writes of one group see each
// other's effects in arrival order.
type groupCommit struct {
	db    *bbolt.DB
	group batch.Group[*groupWrite]
	// rehearse (tests only) runs every group once in a transaction that
	// is rolled back before running it for real: every write function
	// runs twice, as when another write of its group fails.
	rehearse bool
}

// errRehearsal rolls back a rehearsal's transaction.
var errRehearsal = errors.New("rehearsal")

func newGroupCommit(db *bbolt.DB) *groupCommit {
	return &groupCommit{db: db, group: batch.Group[*groupWrite]{Max: maxGroupCommit}}
}

// groupWrite is one caller's write and, once the group has committed, its
// result.
type groupWrite struct {
	fn  func(*bbolt.Tx) error
	err error
}

// update runs fn in a transaction shared with the writes of concurrent
// callers and returns fn's error or the commit's.
func (g *groupCommit) update(fn func(*bbolt.Tx) error) error {
	w := &groupWrite{fn: fn}
	g.group.Do(w, g.commit)
	return w.err
}

// commit runs group's writes in one transaction. A write that fails is
// taken out with its error and the others run again without it.
func (g *groupCommit) commit(group []*groupWrite) {
	if g.rehearse {
		_ = g.db.Update(func(tx *bbolt.Tx) error {
			for _, w := range group {
				_ = safelyRun(w.fn, tx)
			}
			return errRehearsal
		})
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
				w.err = err
			}
			return
		}
		group[failed].err = err
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

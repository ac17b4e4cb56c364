package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

var _ store.Messages = (*Store)(nil)

// Messaging layout:
//
//	threads          thread id → Thread
//	thread_messages  thread id → {"m": {seq (8 bytes BE) → Message}, "k": {author\x00client id → seq}}
//	patient_threads  patient id → {ThreadIndexKey(CreatedAt, id) → ""}
//	inbox            pharmacy id → {state → {ThreadIndexKey(StateSince, id) → ""}}
//	inbox_feed       pharmacy id → {"s": {cursor (8 bytes BE) → thread id}, "p": {thread id → cursor}}
//
// Everything one call changes is written in one transaction.

var (
	subMessages = []byte("m")
	subKeys     = []byte("k")
	subFeedSeq  = []byte("s")
	subFeedPos  = []byte("p")
)

// errThreadIdentityChanged is returned (wrapped) when fn changed a thread's
// ID, PatientID or PharmacyID: a caller bug, not a conflict.
var errThreadIdentityChanged = errors.New("fn changed the thread's ID, PatientID or PharmacyID")

func seqKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }

func idemKey(authorID, clientID string) []byte { return []byte(authorID + "\x00" + clientID) }

func inboxKey(t store.Thread) []byte { return []byte(store.ThreadIndexKey(t.StateSince, t.ID)) }

// CreateThread stores the thread and its first message, indexes it and
// bumps the inbox feed in one transaction; idempotent on t.ID.
func (s *Store) CreateThread(ctx context.Context, t store.Thread, first store.Message) (store.Thread, store.Message, bool, error) {
	created, t0, first0 := false, t, first
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		created, t, first = false, t0, first0
		if t.ID == "" || t.PatientID == "" || t.PharmacyID == "" {
			return errors.New("empty thread, patient or pharmacy id")
		}
		threads := tx.Bucket(bucketThreads)
		if cur, err := s.getThread(threads, t.ID); err == nil {
			msg, err := s.message(tx, t.ID, 1)
			if err != nil {
				return err
			}
			t, first = cur, msg
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		t.Version, t.LastSeq = 1, 1
		first.ThreadID, first.Seq = t.ID, 1
		if err := s.putThread(threads, t); err != nil {
			return err
		}
		msgs, err := tx.Bucket(bucketThreadMessages).CreateBucket([]byte(t.ID))
		if err != nil {
			return err
		}
		if err := s.putMessage(msgs, t.PatientID, first); err != nil {
			return err
		}
		pt, err := tx.Bucket(bucketPatientThreads).CreateBucketIfNotExists([]byte(t.PatientID))
		if err != nil {
			return err
		}
		if err := pt.Put([]byte(store.ThreadIndexKey(t.CreatedAt, t.ID)), nil); err != nil {
			return err
		}
		if err := s.reindex(tx, store.Thread{}, t); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return store.Thread{}, store.Message{}, false, fmt.Errorf("bolt.CreateThread: %w", err)
	}
	return t, first, created, nil
}

// GetThread returns the thread or store.ErrNotFound.
func (s *Store) GetThread(ctx context.Context, id string) (store.Thread, error) {
	var t store.Thread
	err := s.view(ctx, func(tx *bbolt.Tx) (err error) {
		t, err = s.getThread(tx.Bucket(bucketThreads), id)
		return err
	})
	if err != nil {
		return store.Thread{}, fmt.Errorf("bolt.GetThread: %w", err)
	}
	return t, nil
}

// AppendMessage appends m and stores fn's thread in one transaction (fn
// may run more than once); a repeated (author, client id) returns the
// original.
func (s *Store) AppendMessage(ctx context.Context, threadID string, m store.Message, fn func(store.Thread) (store.Thread, error)) (store.Thread, store.Message, bool, error) {
	var out store.Thread
	created, m0 := false, m
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		out, created, m = store.Thread{}, false, m0
		cur, err := s.getThread(tx.Bucket(bucketThreads), threadID)
		if err != nil {
			return err
		}
		msgs := tx.Bucket(bucketThreadMessages).Bucket([]byte(threadID))
		if msgs == nil {
			return fmt.Errorf("thread %s has no message bucket", threadID)
		}
		if v := msgs.Bucket(subKeys).Get(idemKey(m.AuthorID, m.ClientMessageID)); len(v) == 8 {
			orig, err := s.message(tx, threadID, int64(binary.BigEndian.Uint64(v)))
			if err != nil {
				return err
			}
			out, m = cur, orig
			return nil
		}
		next, err := s.storeThread(tx, cur, fn)
		if err != nil {
			return err
		}
		m.ThreadID, m.Seq = threadID, cur.LastSeq+1
		next.LastSeq = m.Seq
		if err := s.putThread(tx.Bucket(bucketThreads), next); err != nil {
			return err
		}
		if err := s.putMessage(msgs, next.PatientID, m); err != nil {
			return err
		}
		out, created = next, true
		return nil
	})
	if err != nil {
		return store.Thread{}, store.Message{}, false, fmt.Errorf("bolt.AppendMessage: %w", err)
	}
	return out, m, created, nil
}

// UpdateThread applies fn and stores the result, reindexing, in one
// transaction (fn may run more than once).
func (s *Store) UpdateThread(ctx context.Context, id string, fn func(store.Thread) (store.Thread, error)) (store.Thread, error) {
	var out store.Thread
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		cur, err := s.getThread(tx.Bucket(bucketThreads), id)
		if err != nil {
			return err
		}
		next, err := s.storeThread(tx, cur, fn)
		if err != nil {
			return err
		}
		out = next
		return s.putThread(tx.Bucket(bucketThreads), next)
	})
	if err != nil {
		return store.Thread{}, fmt.Errorf("bolt.UpdateThread: %w", err)
	}
	return out, nil
}

// storeThread runs fn on cur, checks identity, bumps the version and
// moves the inbox index and feed; the caller puts the record.
func (s *Store) storeThread(tx *bbolt.Tx, cur store.Thread, fn func(store.Thread) (store.Thread, error)) (store.Thread, error) {
	next, err := fn(cloneThread(cur))
	if err != nil {
		return store.Thread{}, err
	}
	if next.ID != cur.ID || next.PatientID != cur.PatientID || next.PharmacyID != cur.PharmacyID {
		return store.Thread{}, errThreadIdentityChanged
	}
	next.Version = cur.Version + 1
	next.LastSeq = cur.LastSeq
	return next, s.reindex(tx, cur, next)
}

// reindex moves the thread in its pharmacy's inbox from old's entry to
// next's and gives it the next cursor of the change feed. old is the zero
// Thread for a new thread.
func (s *Store) reindex(tx *bbolt.Tx, old, next store.Thread) error {
	if err := s.logChanges(tx, next.PatientID, []store.Change{store.ThreadChange(next, time.Now().UTC())}); err != nil {
		return err
	}
	inbox, err := tx.Bucket(bucketInbox).CreateBucketIfNotExists([]byte(next.PharmacyID))
	if err != nil {
		return err
	}
	if old.ID != "" {
		if b := inbox.Bucket([]byte(old.State)); b != nil {
			if err := b.Delete(inboxKey(old)); err != nil {
				return err
			}
		}
	}
	st, err := inbox.CreateBucketIfNotExists([]byte(next.State))
	if err != nil {
		return err
	}
	if err := st.Put(inboxKey(next), nil); err != nil {
		return err
	}
	feed, err := tx.Bucket(bucketInboxFeed).CreateBucketIfNotExists([]byte(next.PharmacyID))
	if err != nil {
		return err
	}
	seqs, err := feed.CreateBucketIfNotExists(subFeedSeq)
	if err != nil {
		return err
	}
	pos, err := feed.CreateBucketIfNotExists(subFeedPos)
	if err != nil {
		return err
	}
	if v := pos.Get([]byte(next.ID)); v != nil {
		if err := seqs.Delete(v); err != nil {
			return err
		}
	}
	n, err := seqs.NextSequence()
	if err != nil {
		return err
	}
	k := seqKey(int64(n))
	if err := seqs.Put(k, []byte(next.ID)); err != nil {
		return err
	}
	return pos.Put([]byte(next.ID), k)
}

// putMessage seals m under the data key of the thread's patient and
// stores it with its idempotency entry (ids and the seq only).
func (s *Store) putMessage(msgs *bbolt.Bucket, patientID string, m store.Message) error {
	m2, err := msgs.CreateBucketIfNotExists(subMessages)
	if err != nil {
		return err
	}
	keys, err := msgs.CreateBucketIfNotExists(subKeys)
	if err != nil {
		return err
	}
	enc, err := sealValue(s, msgs.Tx(), patientID, kindMessage, messageID(m.ThreadID, m.Seq), m)
	if err != nil {
		return err
	}
	if err := m2.Put(seqKey(m.Seq), enc); err != nil {
		return err
	}
	return keys.Put(idemKey(m.AuthorID, m.ClientMessageID), seqKey(m.Seq))
}

func (s *Store) message(tx *bbolt.Tx, threadID string, seq int64) (store.Message, error) {
	msgs := tx.Bucket(bucketThreadMessages).Bucket([]byte(threadID))
	if msgs == nil || msgs.Bucket(subMessages) == nil {
		return store.Message{}, fmt.Errorf("thread %s message %d: %w", threadID, seq, store.ErrNotFound)
	}
	v := msgs.Bucket(subMessages).Get(seqKey(seq))
	if v == nil {
		return store.Message{}, fmt.Errorf("thread %s message %d: %w", threadID, seq, store.ErrNotFound)
	}
	return openValue[store.Message](s, tx, kindMessage, messageID(threadID, seq), v)
}

// messageID is the id a message's ciphertext is bound to.
func messageID(threadID string, seq int64) string { return fmt.Sprintf("%s/%d", threadID, seq) }

// getThread reads and opens a thread, or store.ErrNotFound.
func (s *Store) getThread(threads *bbolt.Bucket, id string) (store.Thread, error) {
	return getSealed[store.Thread](s, threads, kindThread, id, id)
}

// putThread seals t under its patient's data key and stores it.
func (s *Store) putThread(threads *bbolt.Bucket, t store.Thread) error {
	return putSealed(s, threads, t.PatientID, kindThread, t.ID, t.ID, t)
}

// ListMessages returns up to limit messages after afterSeq, in order.
func (s *Store) ListMessages(ctx context.Context, threadID string, afterSeq int64, limit int) ([]store.Message, error) {
	var out []store.Message
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		msgs := tx.Bucket(bucketThreadMessages).Bucket([]byte(threadID))
		if msgs == nil || msgs.Bucket(subMessages) == nil || limit <= 0 {
			return nil
		}
		c := msgs.Bucket(subMessages).Cursor()
		for k, v := c.Seek(seqKey(afterSeq + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			m, err := openValue[store.Message](s, tx, kindMessage, messageID(threadID, int64(binary.BigEndian.Uint64(k))), v)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListMessages: %w", err)
	}
	return out, nil
}

// ListPatientThreads returns the patient's threads newest first, below
// the index key before.
func (s *Store) ListPatientThreads(ctx context.Context, patientID, before string, limit int) ([]store.Thread, error) {
	var out []store.Thread
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		idx := tx.Bucket(bucketPatientThreads).Bucket([]byte(patientID))
		if idx == nil || limit <= 0 {
			return nil
		}
		c := idx.Cursor()
		var k []byte
		if before == "" {
			k, _ = c.Last()
		} else if k, _ = c.Seek([]byte(before)); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Prev() {
			t, err := s.indexedThread(tx, k)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListPatientThreads: %w", err)
	}
	return out, nil
}

// ListInbox returns the pharmacy's threads in state, oldest first, above
// the index key after.
func (s *Store) ListInbox(ctx context.Context, pharmacyID string, state store.ThreadState, after string, limit int) ([]store.Thread, error) {
	var out []store.Thread
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		inbox := tx.Bucket(bucketInbox).Bucket([]byte(pharmacyID))
		if inbox == nil || limit <= 0 {
			return nil
		}
		idx := inbox.Bucket([]byte(state))
		if idx == nil {
			return nil
		}
		c := idx.Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, _ = c.Next()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			t, err := s.indexedThread(tx, k)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.ListInbox: %w", err)
	}
	return out, nil
}

// indexedThread reads the thread an index key names.
func (s *Store) indexedThread(tx *bbolt.Tx, key []byte) (store.Thread, error) {
	if len(key) < 22 || key[20] != ':' {
		return store.Thread{}, fmt.Errorf("bad thread index key %q", key)
	}
	id := string(key[21:])
	t, err := s.getThread(tx.Bucket(bucketThreads), id)
	if err != nil {
		return store.Thread{}, fmt.Errorf("thread %s in an index: %w", id, err)
	}
	return t, nil
}

// InboxChanges returns feed entries after the cursor, oldest first.
func (s *Store) InboxChanges(ctx context.Context, pharmacyID string, after int64, limit int) ([]store.InboxChange, error) {
	var out []store.InboxChange
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		feed := tx.Bucket(bucketInboxFeed).Bucket([]byte(pharmacyID))
		if feed == nil || feed.Bucket(subFeedSeq) == nil || limit <= 0 {
			return nil
		}
		c := feed.Bucket(subFeedSeq).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			t, err := s.getThread(tx.Bucket(bucketThreads), string(v))
			if err != nil {
				return fmt.Errorf("thread %s in the inbox feed: %w", v, err)
			}
			out = append(out, store.InboxChange{Cursor: int64(binary.BigEndian.Uint64(k)), Thread: t})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt.InboxChanges: %w", err)
	}
	return out, nil
}

// InboxHead returns the newest feed cursor, 0 when empty.
func (s *Store) InboxHead(ctx context.Context, pharmacyID string) (int64, error) {
	var head int64
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		feed := tx.Bucket(bucketInboxFeed).Bucket([]byte(pharmacyID))
		if feed == nil || feed.Bucket(subFeedSeq) == nil {
			return nil
		}
		head = int64(feed.Bucket(subFeedSeq).Sequence())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt.InboxHead: %w", err)
	}
	return head, nil
}

// cloneThread copies the thread's map so fn cannot change the caller's.
func cloneThread(t store.Thread) store.Thread {
	if t.ReadThrough != nil {
		m := make(map[string]int64, len(t.ReadThrough))
		for k, v := range t.ReadThrough {
			m[k] = v
		}
		t.ReadThrough = m
	}
	return t
}

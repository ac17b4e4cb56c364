package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

var _ store.Messages = (*Store)(nil)

// Messaging keys. A thread and its messages share the thread's hash tag, so
// appending a message and changing the thread is one script. The patient's
// thread list lives in the patient's slot and the inbox and its change feed
// in the pharmacy's slot:
//
//	mtm:{th:<thread>}                  thread record (version header + CBOR)
//	mtm:{th:<thread>}:msgs             sorted set, score seq, member seq (8 bytes) + message record
//	mtm:{th:<thread>}:keys             hash "<author>\x00<client message id>" -> seq
//	mtm:{p:<patient>}:threads          sorted set (lex) of ThreadIndexKey(CreatedAt, id)
//	mtm:{ph:<pharmacy>}:inbox:<state>  sorted set (lex) of ThreadIndexKey(StateSince, id)
//	mtm:{ph:<pharmacy>}:feed           sorted set, score cursor, member thread id
//	mtm:{ph:<pharmacy>}:feedseq        last cursor handed out
//
// Index entries are written before the thread and removed after it, so a
// stop between steps leaves an extra entry, never a missing one; listings
// skip entries that do not match the thread they name. On one node (not a
// Cluster, where the slots differ) a message's new inbox entry is written
// by the append script itself, with the thread. The change feed is
// bumped after the thread is written, so a watcher that reads the feed
// always reads a thread at least as new as the change.
func (k keys) thread(id string) string          { return k.tag("th", id) }
func (k keys) threadMsgs(id string) string      { return k.tag("th", id) + ":msgs" }
func (k keys) threadKeys(id string) string      { return k.tag("th", id) + ":keys" }
func (k keys) patientThreads(id string) string  { return k.tag("p", id) + ":threads" }
func (k keys) inboxFeed(pharmacy string) string { return k.tag("ph", pharmacy) + ":feed" }
func (k keys) inboxSeq(pharmacy string) string  { return k.tag("ph", pharmacy) + ":feedseq" }
func (k keys) inbox(pharmacy string, st store.ThreadState) string {
	return k.tag("ph", pharmacy) + ":inbox:" + string(st)
}

const stDuplicate = "DUP"

// messagingScripts are the messaging steps; see newMessagingScripts.
type messagingScripts struct {
	createThread, appendMessage, bumpFeed *redis.Script
}

func newMessagingScripts() messagingScripts {
	w := func(body string) *redis.Script { return redis.NewScript(idempotent + body) }
	return messagingScripts{
		// KEYS[2] thread, KEYS[3] msgs, KEYS[4] keys. ARGV[2] thread
		// record, ARGV[3] message member, ARGV[4] idempotency field.
		createThread: w(`
if redis.call('EXISTS', KEYS[2]) == 1 then return finish('EXISTS') end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], 1, ARGV[3])
redis.call('HSET', KEYS[4], ARGV[4], 1)
return finish('OK')`),
		// KEYS as createThread, and KEYS[5], when given, the inbox that
		// gets the thread's new entry ARGV[7] (only on one node: it is
		// in the pharmacy's slot). ARGV[2] expected thread header, ARGV[3]
		// new thread record, ARGV[4] seq, ARGV[5] message member, ARGV[6]
		// idempotency field. DUP returns the original seq. Nothing is
		// written unless everything is.
		appendMessage: w(`
local dup = redis.call('HGET', KEYS[4], ARGV[6])
if dup then return finish('DUP', dup) end
local cur = redis.call('GETRANGE', KEYS[2], 0, string.len(ARGV[2]) - 1)
if cur == '' then return finish('NOTFOUND') end
if cur ~= ARGV[2] then return finish('CONFLICT') end
if KEYS[5] then redis.call('ZADD', KEYS[5], 0, ARGV[7]) end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[4], ARGV[6], ARGV[4])
return finish('OK')`),
		// Not idempotent and need not be: a re-run moves the thread
		// further ahead. KEYS[1] counter, KEYS[2] feed; ARGV[1] thread id.
		bumpFeed: redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], n, ARGV[1])
return n`),
	}
}

// runKeys runs an idempotent write script whose first data key is keys[0]
// (the op slot goes in that key's slot) under a fresh operation id.
func (s *Store) runKeys(ctx context.Context, sc *redis.Script, keys []string, args ...any) (status, payload string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	id, err := s.opID()
	if err != nil {
		return "", "", err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	argv := append([]any{s.opts.OpTTL.Milliseconds()}, args...)
	res, err := s.eval(ctx, sc, append([]string{op(keys[0], id)}, keys...), argv...).Slice()
	if err != nil {
		return "", "", err
	}
	if len(res) != 2 {
		return "", "", fmt.Errorf("script reply has %d elements, want 2", len(res))
	}
	status, _ = res[0].(string)
	payload, _ = res[1].(string)
	return status, payload, nil
}

type threadWire struct {
	ID              string           `cbor:"1,keyasint,omitempty"`
	PatientID       string           `cbor:"2,keyasint,omitempty"`
	PharmacyID      string           `cbor:"3,keyasint,omitempty"`
	Subject         string           `cbor:"4,keyasint,omitempty"`
	StartedBy       string           `cbor:"5,keyasint,omitempty"`
	State           string           `cbor:"6,keyasint,omitempty"`
	StateSince      int64            `cbor:"7,keyasint,omitempty"`
	ClaimedBy       string           `cbor:"8,keyasint,omitempty"`
	LastSeq         int64            `cbor:"9,keyasint,omitempty"`
	ReadThrough     map[string]int64 `cbor:"10,keyasint,omitempty"`
	FirstResponseAt int64            `cbor:"11,keyasint,omitempty"`
	CreatedAt       int64            `cbor:"12,keyasint,omitempty"`
	UpdatedAt       int64            `cbor:"13,keyasint,omitempty"`
}

type messageWire struct {
	ThreadID        string `cbor:"1,keyasint,omitempty"`
	Seq             int64  `cbor:"2,keyasint,omitempty"`
	ClientMessageID string `cbor:"3,keyasint,omitempty"`
	AuthorID        string `cbor:"4,keyasint,omitempty"`
	AuthorRole      string `cbor:"5,keyasint,omitempty"`
	AuthorName      string `cbor:"6,keyasint,omitempty"`
	Body            string `cbor:"7,keyasint,omitempty"`
	SentAt          int64  `cbor:"8,keyasint,omitempty"`
}

// sealThread is encodeThread sealed under the patient's data key dk (nil:
// unsealed); the patient id stays readable after the version (see
// sealing.go).
func (s *Store) sealThread(dk *seal.DataKey, t store.Thread) ([]byte, error) {
	rec, err := s.encodeThread(t)
	if err != nil {
		return nil, err
	}
	return sealVersioned(dk, kindThread, t.ID, rec, threadExtra(t.PatientID))
}

// storedThreadPatient returns the patient id of a stored thread, read
// from the clear header of a sealed one or by decoding an unsealed one.
func (s *Store) storedThreadPatient(b []byte) (string, error) {
	if len(b) > 0 && b[0] == formatSealed {
		pid, _, err := threadPatient(b)
		return pid, err
	}
	t, err := s.decodeThread(b)
	return t.PatientID, err
}

// openThread decodes a stored thread (id is the thread's), sealed or not;
// dk is its patient's data key.
func (s *Store) openThread(dk *seal.DataKey, id string, b []byte) (store.Thread, error) {
	if len(b) > 0 && b[0] == formatSealed {
		_, hlen, err := threadPatient(b)
		if err != nil {
			return store.Thread{}, err
		}
		if b, err = openVersioned(dk, kindThread, id, hlen, b); err != nil {
			return store.Thread{}, err
		}
	}
	return s.decodeThread(b)
}

// openThreads decodes stored threads by index. known holds the data keys
// already read, by patient; the keys of the other patients are read in
// one pipeline (and their threads' patients remembered).
func (s *Store) openThreads(ctx context.Context, ids map[int]string, raws map[int][]byte, known map[string]*seal.DataKey) (map[int]store.Thread, error) {
	var pids []string
	for i, b := range raws {
		if len(b) > 0 && b[0] == formatSealed {
			pid, _, err := threadPatient(b)
			if err != nil {
				return nil, err
			}
			if _, ok := known[pid]; !ok {
				pids = append(pids, pid)
			}
			s.threadOwners.put(ids[i], pid)
		}
	}
	dks, err := s.readKeys(ctx, pids)
	if err != nil {
		return nil, err
	}
	for pid, dk := range known {
		dks[pid] = dk
	}
	out := make(map[int]store.Thread, len(raws))
	for i, b := range raws {
		var dk *seal.DataKey
		if len(b) > 0 && b[0] == formatSealed {
			pid, _, _ := threadPatient(b)
			dk = dks[pid]
		}
		t, err := s.openThread(dk, ids[i], b)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

func (s *Store) encodeThread(t store.Thread) ([]byte, error) {
	return s.encodeVersioned(t.Version, threadWire{ID: t.ID, PatientID: t.PatientID, PharmacyID: t.PharmacyID, Subject: t.Subject,
		StartedBy: t.StartedBy, State: string(t.State), StateSince: tEnc(t.StateSince), ClaimedBy: t.ClaimedBy, LastSeq: t.LastSeq,
		ReadThrough: t.ReadThrough, FirstResponseAt: tEnc(t.FirstResponseAt), CreatedAt: tEnc(t.CreatedAt), UpdatedAt: tEnc(t.UpdatedAt)})
}

func (s *Store) decodeThread(b []byte) (store.Thread, error) {
	var w threadWire
	v, err := s.decodeVersioned(b, &w)
	if err != nil {
		return store.Thread{}, err
	}
	return store.Thread{ID: w.ID, PatientID: w.PatientID, PharmacyID: w.PharmacyID, Subject: w.Subject, StartedBy: w.StartedBy,
		State: store.ThreadState(w.State), StateSince: tDec(w.StateSince), ClaimedBy: w.ClaimedBy, LastSeq: w.LastSeq,
		ReadThrough: w.ReadThrough, FirstResponseAt: tDec(w.FirstResponseAt), CreatedAt: tDec(w.CreatedAt),
		UpdatedAt: tDec(w.UpdatedAt), Version: v}, nil
}

// messageMember is the sorted-set member of a message: its seq (so that
// members are unique) and its record.
func (s *Store) messageMember(dk *seal.DataKey, m store.Message) ([]byte, error) {
	rec, err := s.encode(messageWire{ThreadID: m.ThreadID, Seq: m.Seq, ClientMessageID: m.ClientMessageID, AuthorID: m.AuthorID,
		AuthorRole: string(m.AuthorRole), AuthorName: m.AuthorName, Body: m.Body, SentAt: tEnc(m.SentAt)})
	if err != nil {
		return nil, err
	}
	if rec, err = sealRecord(dk, kindMessage, messageID(m.ThreadID, m.Seq), rec); err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(m.Seq)), rec...), nil
}

// messageID names a message in its ciphertext's associated data.
func messageID(threadID string, seq int64) string { return threadID + "/" + strconv.FormatInt(seq, 10) }

func (s *Store) decodeMessage(dk *seal.DataKey, threadID, member string) (store.Message, error) {
	if len(member) < 9 {
		return store.Message{}, errFormat
	}
	seq := int64(binary.BigEndian.Uint64([]byte(member[:8])))
	rec, err := openRecord(dk, kindMessage, messageID(threadID, seq), []byte(member[8:]))
	if err != nil {
		return store.Message{}, err
	}
	var w messageWire
	if err := s.decode(rec, &w); err != nil {
		return store.Message{}, err
	}
	return store.Message{ThreadID: w.ThreadID, Seq: w.Seq, ClientMessageID: w.ClientMessageID, AuthorID: w.AuthorID,
		AuthorRole: store.Role(w.AuthorRole), AuthorName: w.AuthorName, Body: w.Body, SentAt: tDec(w.SentAt)}, nil
}

func idemField(authorID, clientID string) string { return authorID + "\x00" + clientID }

func inboxMember(t store.Thread) string { return store.ThreadIndexKey(t.StateSince, t.ID) }

// CreateThread indexes the thread under its patient and in the inbox, then
// creates the thread with its first message in one script, then bumps the
// inbox feed. Idempotent on t.ID.
func (s *Store) CreateThread(ctx context.Context, t store.Thread, first store.Message) (store.Thread, store.Message, bool, error) {
	const opName = "redisstore.CreateThread"
	if t.ID == "" || t.PatientID == "" || t.PharmacyID == "" {
		return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: empty thread, patient or pharmacy id", opName)
	}
	t.Version, t.LastSeq = 1, 1
	first.ThreadID, first.Seq = t.ID, 1
	if err := ctx.Err(); err != nil {
		return store.Thread{}, store.Message{}, false, s.fail(opName, err)
	}
	dk, wrapped, err := s.writeKeyWrapped(ctx, t.PatientID)
	if err != nil {
		return store.Thread{}, store.Message{}, false, s.fail(opName, err)
	}
	rec, err := s.sealThread(dk, t)
	if err != nil {
		return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: %w", opName, err)
	}
	member, err := s.messageMember(dk, first)
	if err != nil {
		return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: %w", opName, err)
	}
	ptKey, ptMember := s.k.patientThreads(t.PatientID), store.ThreadIndexKey(t.CreatedAt, t.ID)
	inKey, inMember := s.k.inbox(t.PharmacyID, t.State), inboxMember(t)
	if err := s.zaddLex(ctx, ptKey, ptMember); err != nil {
		return store.Thread{}, store.Message{}, false, s.fail(opName, err)
	}
	if err := s.zaddLex(ctx, inKey, inMember); err != nil {
		return store.Thread{}, store.Message{}, false, s.fail(opName, err)
	}
	s.sealedHook(t.PatientID)
	status, _, err := s.runKeys(ctx, s.scripts.msg.createThread,
		[]string{s.k.thread(t.ID), s.k.threadMsgs(t.ID), s.k.threadKeys(t.ID)}, rec, member, idemField(first.AuthorID, first.ClientMessageID))
	if err != nil {
		return store.Thread{}, store.Message{}, false, s.fail(opName, err)
	}
	switch status {
	case stOK:
		if err := s.resealThreadIfKeyMoved(ctx, t, first, wrapped, rec, member); err != nil {
			return store.Thread{}, store.Message{}, false, s.fail(opName, err)
		}
		if err := s.bumpFeed(ctx, t, "", ""); err != nil {
			return store.Thread{}, store.Message{}, false, s.fail(opName, err)
		}
		if s.sealing() {
			s.threadOwners.put(t.ID, t.PatientID)
		}
		return t, first, true, nil
	case stExists:
		cur, err := s.GetThread(ctx, t.ID)
		if err != nil {
			return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: %w", opName, err)
		}
		// Withdraw this attempt's index entries when they are not the
		// stored thread's (best effort: listings skip them anyway).
		if store.ThreadIndexKey(cur.CreatedAt, cur.ID) != ptMember {
			s.zrem(ctx, ptKey, ptMember)
		}
		if cur.State != t.State || inboxMember(cur) != inMember {
			s.zrem(ctx, inKey, inMember)
		}
		msgs, err := s.ListMessages(ctx, t.ID, 0, 1)
		if err != nil {
			return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: %w", opName, err)
		}
		if len(msgs) == 0 {
			return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: thread %s has no first message", opName, t.ID)
		}
		return cur, msgs[0], false, nil
	default:
		return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
}

// GetThread returns the thread or store.ErrNotFound.
func (s *Store) GetThread(ctx context.Context, id string) (store.Thread, error) {
	t, _, _, err := s.readThread(ctx, id)
	return t, err
}

// readThread returns the thread, its stored header (what the next
// compare-and-set expects) and its patient's data key (nil when the thread
// is not sealed).
func (s *Store) readThread(ctx context.Context, id string) (store.Thread, []byte, *seal.DataKey, error) {
	r, err := s.readThreadWith(ctx, id, "")
	return r.t, r.header, r.dk, err
}

// threadRead is what readThreadWith read.
type threadRead struct {
	t      store.Thread
	header []byte        // the stored header a compare-and-set expects
	dk     *seal.DataKey // the patient's data key; nil when the thread is not sealed
	// dup is whether the idempotency field names a stored message, dupSeq
	// its seq.
	dup    bool
	dupSeq int64
}

// readThreadWith reads the thread and, when idem is not empty, the seq of
// the message that idempotency field names, in one round trip; the data
// key of a thread's patient is read in that same round trip when this
// Store has seen the thread before (threadOwners), else in a second one.
func (s *Store) readThreadWith(ctx context.Context, id, idem string) (threadRead, error) {
	var out threadRead
	err := retrySealed(func() error {
		var err error
		out, err = s.readThreadOnce(ctx, id, idem)
		return err
	})
	return out, err
}

// readThreadOnce is one attempt of readThreadWith.
func (s *Store) readThreadOnce(ctx context.Context, id, idem string) (threadRead, error) {
	const opName = "redisstore.GetThread"
	if err := ctx.Err(); err != nil {
		return threadRead{}, s.fail(opName, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	pipe := s.rdb.Pipeline()
	var idemCmd *redis.StringCmd
	if idem != "" {
		idemCmd = pipe.HGet(cctx, s.k.threadKeys(id), idem)
	}
	threadCmd := pipe.Get(cctx, s.k.thread(id))
	owner, keyCmd := s.pipeOwnerKey(cctx, pipe, id)
	if _, err := pipe.Exec(cctx); err != nil && !errors.Is(err, redis.Nil) {
		return threadRead{}, s.fail(opName, err)
	}
	b, err := threadCmd.Bytes()
	if err != nil {
		return threadRead{}, s.fail(opName, err)
	}
	var out threadRead
	if idemCmd != nil {
		seq, err := idemCmd.Int64()
		switch {
		case err == nil:
			out.dup, out.dupSeq = true, seq
		case !errors.Is(err, redis.Nil):
			return threadRead{}, s.fail(opName, err)
		}
	}
	hlen := versionedHeaderLen
	if b[0] == formatSealed {
		pid, n, err := threadPatient(b)
		hlen = n
		if err != nil {
			return threadRead{}, fmt.Errorf("%s: %w", opName, err)
		}
		if out.dk, err = s.ownerKey(cctx, id, pid, owner, keyCmd); err != nil {
			return threadRead{}, s.fail(opName, err)
		}
	}
	if out.t, err = s.openThread(out.dk, id, b); err != nil {
		return threadRead{}, fmt.Errorf("%s: %w", opName, err)
	}
	out.header = casHeader(b, hlen)
	return out, nil
}

// threadOwners maps thread ids to the patient whose data key seals each
// thread, as read from stored threads. A thread's patient never changes
// (an update may not change it), so an entry stays true; a reader still
// compares it with the stored thread's clear header and reads the key of
// the patient the header names when they differ. Bounded: emptied when it
// reaches maxThreadOwners entries.
type threadOwners struct {
	mu sync.Mutex
	m  map[string]string
}

// maxThreadOwners bounds threadOwners (about 100 bytes an entry).
const maxThreadOwners = 1 << 16

func (o *threadOwners) get(threadID string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[threadID]
}

func (o *threadOwners) put(threadID, patientID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || len(o.m) >= maxThreadOwners {
		o.m = make(map[string]string)
	}
	o.m[threadID] = patientID
}

// pipeOwnerKey queues, on pipe, a read of the data key of the patient
// this Store has seen the thread to be about, and returns that patient
// and the command; "" and nil when the thread is not known here.
func (s *Store) pipeOwnerKey(ctx context.Context, pipe redis.Pipeliner, threadID string) (string, *redis.StringCmd) {
	pid := s.threadOwners.get(threadID)
	if pid == "" {
		return "", nil
	}
	return pid, pipe.Get(ctx, s.k.patientKey(pid))
}

// ownerKey returns the data key of patient pid, whose thread threadID
// is: the one keyCmd read alongside the thread when pipeOwnerKey named pid
// (owner), else read now (and the thread's patient remembered).
func (s *Store) ownerKey(ctx context.Context, threadID, pid, owner string, keyCmd *redis.StringCmd) (*seal.DataKey, error) {
	if keyCmd != nil && owner == pid {
		return s.pipedKey(pid, keyCmd)
	}
	dks, err := s.readKeys(ctx, []string{pid})
	if err != nil {
		return nil, err
	}
	s.threadOwners.put(threadID, pid)
	return dks[pid], nil
}

// AppendMessage appends m and stores fn's thread by compare-and-set on the
// thread's version (fn may run more than once); the script first checks the
// idempotency key, so a retry returns the original message.
func (s *Store) AppendMessage(ctx context.Context, threadID string, m store.Message, fn func(store.Thread) (store.Thread, error)) (store.Thread, store.Message, bool, error) {
	const opName = "redisstore.AppendMessage"
	field := idemField(m.AuthorID, m.ClientMessageID)
	var out store.Thread
	var stored store.Message
	created := false
	err := s.casThread(ctx, threadID, field, fn, func(cur, next store.Thread, header []byte, dk *seal.DataKey, entry inboxEntry) (string, error) {
		m.ThreadID, m.Seq = threadID, cur.LastSeq+1
		next.LastSeq = m.Seq
		rec, err := s.sealThread(dk, next)
		if err != nil {
			return "", err
		}
		member, err := s.messageMember(dk, m)
		if err != nil {
			return "", err
		}
		keys := []string{s.k.thread(threadID), s.k.threadMsgs(threadID), s.k.threadKeys(threadID)}
		args := []any{header, rec, m.Seq, member, field}
		if entry.key != "" {
			keys, args = append(keys, entry.key), append(args, entry.member)
		}
		status, payload, err := s.runKeys(ctx, s.scripts.msg.appendMessage, keys, args...)
		if err != nil {
			return "", err
		}
		switch status {
		case stOK:
			out, stored, created = next, m, true
		case stDuplicate:
			seq, err := strconv.ParseInt(payload, 10, 64)
			if err != nil {
				return "", fmt.Errorf("bad seq %q: %w", payload, err)
			}
			orig, err := s.message(ctx, threadID, seq)
			if err != nil {
				return "", err
			}
			if out, err = s.GetThread(ctx, threadID); err != nil {
				return "", err
			}
			stored = orig
		}
		return status, nil
	}, func(ctx context.Context, seq int64, cur store.Thread) error {
		// Found with the thread, before running fn: a retry of a stored
		// message writes nothing.
		orig, err := s.message(ctx, threadID, seq)
		if err != nil {
			return err
		}
		out, stored = cur, orig
		return nil
	})
	if err != nil {
		return store.Thread{}, store.Message{}, false, fmt.Errorf("%s: %w", opName, err)
	}
	return out, stored, created, nil
}

// UpdateThread applies fn and stores the result by compare-and-set on the
// version, moving the inbox entry and bumping the change feed.
func (s *Store) UpdateThread(ctx context.Context, id string, fn func(store.Thread) (store.Thread, error)) (store.Thread, error) {
	const opName = "redisstore.UpdateThread"
	var out store.Thread
	err := s.casThread(ctx, id, "", fn, func(cur, next store.Thread, header []byte, dk *seal.DataKey, _ inboxEntry) (string, error) {
		rec, err := s.sealThread(dk, next)
		if err != nil {
			return "", err
		}
		status, _, err := s.run(ctx, s.scripts.casVersioned, s.k.thread(id), header, rec)
		if status == stOK {
			out = next
		}
		return status, err
	}, nil)
	if err != nil {
		return store.Thread{}, fmt.Errorf("%s: %w", opName, err)
	}
	return out, nil
}

// inboxEntry is an inbox entry a thread write adds with the thread; the
// zero value adds none.
type inboxEntry struct{ key, member string }

// casThread is the optimistic loop of AppendMessage and UpdateThread: read
// the thread, run fn, add the inbox entry of the new state, write (the
// write func returns a script status), then drop the old inbox entry and
// bump the feed. With an idempotency field idem, each attempt reads, with
// the thread, whether a message already holds that field (an idempotent
// retry): then dup is called with its seq and the thread, and nothing is
// written. When idem is set and the store is one node (entriesInScript),
// the new inbox entry is handed to write, which must add it in the same
// script as the thread (one round trip less, and no extra entry left by
// a conflict); otherwise it is added before write and write gets none.
func (s *Store) casThread(ctx context.Context, id, idem string, fn func(store.Thread) (store.Thread, error),
	write func(cur, next store.Thread, header []byte, dk *seal.DataKey, entry inboxEntry) (string, error), dup func(ctx context.Context, seq int64, cur store.Thread) error) error {
	for attempt := range s.opts.MaxUpdateAttempts {
		if attempt > 0 {
			if err := s.jitter(ctx, attempt); err != nil {
				return s.fail("retry", err)
			}
		}
		r, err := s.readThreadWith(ctx, id, idem)
		if err != nil {
			return err
		}
		if r.dup {
			if err := dup(ctx, r.dupSeq, r.t); err != nil {
				return s.fail("lookup", err)
			}
			return nil
		}
		cur, header, dk := r.t, r.header, r.dk
		if dk, err = s.keyForWrite(ctx, cur.PatientID, dk); err != nil {
			return s.fail("data key", err)
		}
		next, err := fn(cloneThread(cur))
		if err != nil {
			return err
		}
		if next.ID != cur.ID || next.PatientID != cur.PatientID || next.PharmacyID != cur.PharmacyID {
			return errors.New("the update changes the thread's id, patient or pharmacy")
		}
		next.Version, next.LastSeq = cur.Version+1, cur.LastSeq
		oldKey, oldMember := s.k.inbox(cur.PharmacyID, cur.State), inboxMember(cur)
		newKey, newMember := s.k.inbox(next.PharmacyID, next.State), inboxMember(next)
		moved := oldKey != newKey || oldMember != newMember
		var entry inboxEntry
		switch {
		case moved && idem != "" && s.entriesInScript():
			entry = inboxEntry{newKey, newMember}
		case moved:
			if err := s.zaddLex(ctx, newKey, newMember); err != nil {
				return s.fail("index", err)
			}
		}
		status, err := write(cur, next, header, dk, entry)
		if err != nil {
			return s.fail("write", err)
		}
		switch status {
		case stOK:
			if !moved {
				oldKey, oldMember = "", ""
			}
			if err := s.bumpFeed(ctx, next, oldKey, oldMember); err != nil {
				return s.fail("feed", err)
			}
			return nil
		case stDuplicate:
			return nil
		case stNotFound:
			return store.ErrNotFound
		case stConflict:
			continue // the extra entry of this attempt is skipped by listings
		default:
			return fmt.Errorf("unexpected script status %q", status)
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", s.opts.MaxUpdateAttempts, store.ErrConflict)
}

// bumpFeed follows a stored change of thread t: it removes the thread's
// old inbox entry (dropKey, dropMember; none when dropKey is empty; best
// effort, listings skip a leftover), moves the thread to the head of its
// pharmacy's change feed and logs the change in its patient's change log.
// All three go in one pipeline (one round trip; on a Cluster, one per
// node, in parallel) unless writes wait for replicas, where each write
// is sent with its own WAIT.
func (s *Store) bumpFeed(ctx context.Context, t store.Thread, dropKey, dropMember string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.replicated() {
		if dropKey != "" {
			s.zrem(ctx, dropKey, dropMember)
		}
		cctx, cancel := s.call(ctx)
		defer cancel()
		if err := s.eval(cctx, s.scripts.msg.bumpFeed, []string{s.k.inboxSeq(t.PharmacyID), s.k.inboxFeed(t.PharmacyID)}, t.ID).Err(); err != nil {
			return err
		}
		return s.logThreadChange(ctx, t)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	type scriptCall struct {
		sc   *redis.Script
		keys []string
		args []any
		cmd  *redis.Cmd
	}
	calls := []*scriptCall{
		{sc: s.scripts.msg.bumpFeed, keys: []string{s.k.inboxSeq(t.PharmacyID), s.k.inboxFeed(t.PharmacyID)}, args: []any{t.ID}},
		{sc: s.scripts.changes.logChanges, keys: []string{s.k.patientChanges(t.PatientID), s.k.patientParts(t.PatientID)},
			args: append([]any{store.ChangeLogKeep}, changeArgs([]store.Change{store.ThreadChange(t, s.opts.Now())})...)},
	}
	pipe := s.rdb.Pipeline()
	if dropKey != "" {
		pipe.ZRem(cctx, dropKey, dropMember)
	}
	for _, c := range calls {
		c.cmd = c.sc.EvalSha(cctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(cctx) // each command's own error is checked below
	for _, c := range calls {
		err := c.cmd.Err()
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// The server lost its scripts (a restart, SCRIPT FLUSH) and
			// ran nothing of this one: send it whole.
			err = s.eval(cctx, c.sc, c.keys, c.args...).Err()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// entriesInScript reports whether one script may write a thread and an
// index entry in another hash tag's slot: on one node (a single server or
// a Sentinel-managed primary) it may; on a Cluster the slots may live on
// different nodes.
func (s *Store) entriesInScript() bool {
	_, one := s.rdb.(*redis.Client)
	return one
}

func (s *Store) zaddLex(ctx context.Context, key, member string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	return s.zadd(ctx, key, member)
}

// zrem removes an index entry, best effort: a leftover entry is skipped by
// listings.
func (s *Store) zrem(ctx context.Context, key, member string) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	s.rdb.ZRem(ctx, key, member)
}

func (s *Store) message(ctx context.Context, threadID string, seq int64) (store.Message, error) {
	msgs, err := s.ListMessages(ctx, threadID, seq-1, 1)
	if err != nil {
		return store.Message{}, err
	}
	if len(msgs) == 0 || msgs[0].Seq != seq {
		return store.Message{}, fmt.Errorf("thread %s message %d: %w", threadID, seq, store.ErrNotFound)
	}
	return msgs[0], nil
}

// ListMessages returns up to limit messages with seq above afterSeq.
func (s *Store) ListMessages(ctx context.Context, threadID string, afterSeq int64, limit int) ([]store.Message, error) {
	var out0 []store.Message
	err := retrySealed(func() error {
		var err error
		out0, err = s.listMessagesOnce(ctx, threadID, afterSeq, limit)
		return err
	})
	return out0, err
}

// listMessagesOnce is one attempt of ListMessages.
func (s *Store) listMessagesOnce(ctx context.Context, threadID string, afterSeq int64, limit int) ([]store.Message, error) {
	const opName = "redisstore.ListMessages"
	if limit <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail(opName, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	// The messages and the thread (whose header names the patient whose
	// key seals them) share the thread's slot: one round trip.
	// The data key comes along too when this Store knows the thread's
	// patient.
	pipe := s.rdb.Pipeline()
	msgsCmd := pipe.ZRangeByScore(cctx, s.k.threadMsgs(threadID), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(afterSeq, 10), Max: "+inf", Count: int64(limit)})
	threadCmd := pipe.Get(cctx, s.k.thread(threadID))
	owner, keyCmd := s.pipeOwnerKey(cctx, pipe, threadID)
	if _, err := pipe.Exec(cctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail(opName, err)
	}
	members, err := msgsCmd.Result()
	if err != nil {
		return nil, s.fail(opName, err)
	}
	var dk *seal.DataKey
	for _, mem := range members {
		if len(mem) > 8 && mem[8] == formatSealed {
			raw, err := threadCmd.Bytes()
			if err != nil {
				return nil, s.fail(opName, err)
			}
			pid, err := s.storedThreadPatient(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", opName, err)
			}
			if dk, err = s.ownerKey(cctx, threadID, pid, owner, keyCmd); err != nil {
				return nil, s.fail(opName, err)
			}
			break
		}
	}
	out := make([]store.Message, 0, len(members))
	for _, mem := range members {
		m, err := s.decodeMessage(dk, threadID, mem)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opName, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// ListPatientThreads returns the patient's threads newest first below the
// index key before, skipping entries without a matching thread.
func (s *Store) ListPatientThreads(ctx context.Context, patientID, before string, limit int) ([]store.Thread, error) {
	const opName = "redisstore.ListPatientThreads"
	key := s.k.patientThreads(patientID)
	match := func(member string, t store.Thread) bool {
		return t.PatientID == patientID && store.ThreadIndexKey(t.CreatedAt, t.ID) == member
	}
	next := func(ctx context.Context, cursor string, n int) ([]string, error) {
		max := "+"
		if cursor != "" {
			max = "(" + cursor
		}
		return s.rdb.ZRevRangeByLex(ctx, key, &redis.ZRangeBy{Min: "-", Max: max, Count: int64(n)}).Result()
	}
	out, err := s.listIndexed(ctx, before, limit, next, match)
	if err != nil {
		return nil, s.fail(opName, err)
	}
	return out, nil
}

// ListInbox returns the pharmacy's threads in state, oldest first, above
// the index key after, skipping entries that do not match their thread.
func (s *Store) ListInbox(ctx context.Context, pharmacyID string, state store.ThreadState, after string, limit int) ([]store.Thread, error) {
	const opName = "redisstore.ListInbox"
	key := s.k.inbox(pharmacyID, state)
	match := func(member string, t store.Thread) bool {
		return t.PharmacyID == pharmacyID && t.State == state && inboxMember(t) == member
	}
	next := func(ctx context.Context, cursor string, n int) ([]string, error) {
		min := "-"
		if cursor != "" {
			min = "(" + cursor
		}
		return s.rdb.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: min, Max: "+", Count: int64(n)}).Result()
	}
	out, err := s.listIndexed(ctx, after, limit, next, match)
	if err != nil {
		return nil, s.fail(opName, err)
	}
	return out, nil
}

// listIndexed pages through an index with next, reads the threads the
// entries name and keeps those match accepts, until it has limit or the
// index ends.
func (s *Store) listIndexed(ctx context.Context, cursor string, limit int,
	next func(ctx context.Context, cursor string, n int) ([]string, error), match func(string, store.Thread) bool) ([]store.Thread, error) {
	var out []store.Thread
	for len(out) < limit {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want := limit - len(out)
		cctx, cancel := s.call(ctx)
		members, err := next(cctx, cursor, want)
		if err != nil {
			cancel()
			return nil, err
		}
		threads, err := s.getThreads(cctx, members)
		cancel()
		if err != nil {
			return nil, err
		}
		for i, m := range members {
			if t, ok := threads[i]; ok && match(m, t) {
				out = append(out, t)
			}
		}
		if len(members) < want {
			break
		}
		cursor = members[len(members)-1]
	}
	return out, nil
}

// getThreads reads the threads that index members name, in one pipeline;
// missing threads are absent from the map.
func (s *Store) getThreads(ctx context.Context, members []string) (map[int]store.Thread, error) {
	var out0 map[int]store.Thread
	err := retrySealed(func() error {
		var err error
		out0, err = s.getThreadsOnce(ctx, members)
		return err
	})
	return out0, err
}

// getThreadsOnce is one attempt of getThreads.
func (s *Store) getThreadsOnce(ctx context.Context, members []string) (map[int]store.Thread, error) {
	out := map[int]store.Thread{}
	if len(members) == 0 {
		return out, nil
	}
	// The data keys of the patients of threads this Store has seen come
	// in the same pipeline.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(members))
	ids := make(map[int]string, len(members))
	keyCmds := map[string]*redis.StringCmd{}
	for i, m := range members {
		_, id, ok := strings.Cut(m, ":")
		if !ok {
			return nil, fmt.Errorf("bad thread index entry %q", m)
		}
		ids[i] = id
		cmds[i] = pipe.Get(ctx, s.k.thread(id))
		if pid := s.threadOwners.get(id); pid != "" && keyCmds[pid] == nil {
			keyCmds[pid] = pipe.Get(ctx, s.k.patientKey(pid))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	known := make(map[string]*seal.DataKey, len(keyCmds))
	for pid, c := range keyCmds {
		dk, err := s.pipedKey(pid, c)
		if err != nil {
			return nil, err
		}
		known[pid] = dk
	}
	raws := make(map[int][]byte, len(cmds))
	for i, c := range cmds {
		b, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		raws[i] = b
	}
	return s.openThreads(ctx, ids, raws, known)
}

// InboxChanges returns feed entries above after, oldest first.
func (s *Store) InboxChanges(ctx context.Context, pharmacyID string, after int64, limit int) ([]store.InboxChange, error) {
	const opName = "redisstore.InboxChanges"
	if limit <= 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail(opName, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	zs, err := s.rdb.ZRangeByScoreWithScores(cctx, s.k.inboxFeed(pharmacyID), &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(after, 10), Max: "+inf", Count: int64(limit)}).Result()
	if err != nil {
		return nil, s.fail(opName, err)
	}
	members := make([]string, len(zs))
	for i, z := range zs {
		members[i] = "x:" + z.Member.(string)
	}
	threads, err := s.getThreads(cctx, members)
	if err != nil {
		return nil, s.fail(opName, err)
	}
	out := make([]store.InboxChange, 0, len(zs))
	for i, z := range zs {
		if t, ok := threads[i]; ok {
			out = append(out, store.InboxChange{Cursor: int64(z.Score), Thread: t})
		}
	}
	return out, nil
}

// InboxHead returns the newest feed cursor, 0 when empty.
func (s *Store) InboxHead(ctx context.Context, pharmacyID string) (int64, error) {
	const opName = "redisstore.InboxHead"
	if err := ctx.Err(); err != nil {
		return 0, s.fail(opName, err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	n, err := s.rdb.Get(cctx, s.k.inboxSeq(pharmacyID)).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.fail(opName, err)
	}
	return n, nil
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

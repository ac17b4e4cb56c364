package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// twoStores are two Stores (two mtmd) over one private redis-server, and
// a raw client to it.
func twoStores(t *testing.T) (one, two *redisstore.Store, raw *redis.Client) {
	t.Helper()
	addr, _ := redistest.StartServer(t)
	open := func() *redisstore.Store {
		s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	raw = redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { raw.Close() })
	return open(), open(), raw
}

var msgT0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func threadOf(id, patient string) (store.Thread, store.Message) {
	th := store.Thread{ID: id, PatientID: patient, PharmacyID: "ph-1", Subject: "Ibuprofen?", StartedBy: "cg-1",
		State: store.ThreadOpen, StateSince: msgT0, CreatedAt: msgT0, UpdatedAt: msgT0}
	return th, store.Message{ClientMessageID: "cm-1", AuthorID: "cg-1", AuthorRole: store.RoleCaregiver, Body: "Can Dad take ibuprofen?", SentAt: msgT0}
}

func answer(t store.Thread) (store.Thread, error) {
	t.State, t.StateSince, t.ClaimedBy = store.ThreadAnswered, t.StateSince.Add(time.Minute), "rph-1"
	return t, nil
}

// A Store reads a thread's patient's data key along with the thread once it
// has seen the thread. When the stored thread is about another patient
// than it remembers (here: the thread was removed and stored again for
// another patient by another instance), it still opens the thread and its
// messages, appends, and finds retries.
func TestThreadReadsFollowTheStoredPatient(t *testing.T) {
	ctx := context.Background()
	one, two, raw := twoStores(t)
	th, first := threadOf("th-1", "pat-a")
	if _, _, _, err := one.CreateThread(ctx, th, first); err != nil {
		t.Fatal(err)
	}
	if _, err := one.GetThread(ctx, "th-1"); err != nil {
		t.Fatal(err)
	}
	if err := raw.Del(ctx, "mtm:{th:th-1}", "mtm:{th:th-1}:msgs", "mtm:{th:th-1}:keys").Err(); err != nil {
		t.Fatal(err)
	}
	th, first = threadOf("th-1", "pat-b")
	first.Body = "A question about pat-b"
	if _, _, _, err := two.CreateThread(ctx, th, first); err != nil {
		t.Fatal(err)
	}
	got, err := one.GetThread(ctx, "th-1")
	if err != nil || got.PatientID != "pat-b" {
		t.Fatalf("GetThread: %+v, %v; want the thread about pat-b", got, err)
	}
	msgs, err := one.ListMessages(ctx, "th-1", 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Body != "A question about pat-b" {
		t.Fatalf("ListMessages: %+v, %v; want pat-b's question", msgs, err)
	}
	reply := store.Message{ClientMessageID: "cm-2", AuthorID: "rph-1", AuthorRole: store.RolePharmacist, Body: "Not with that one.", SentAt: msgT0}
	for _, s := range []*redisstore.Store{one, two} { // the second call is a retry
		got, m, _, err := s.AppendMessage(ctx, "th-1", reply, answer)
		if err != nil || m.Seq != 2 || m.Body != reply.Body || got.LastSeq != 2 || got.State != store.ThreadAnswered {
			t.Fatalf("AppendMessage: %+v %+v, %v; want message 2, the thread answered", got, m, err)
		}
	}
	changes, err := two.InboxChanges(ctx, "ph-1", 0, 10)
	if err != nil || len(changes) != 1 || changes[0].Thread.PatientID != "pat-b" || changes[0].Thread.State != store.ThreadAnswered {
		t.Fatalf("InboxChanges: %+v, %v; want the answered thread about pat-b", changes, err)
	}
}

// The feed bump and the change log after a thread's write go in one
// pipeline by script hash: a server that lost its scripts (a restart,
// SCRIPT FLUSH) still gets them, so inbox watchers and the patient's
// change feed see the change.
func TestThreadWritesSurviveAFlushedScriptCache(t *testing.T) {
	ctx := context.Background()
	one, _, raw := twoStores(t)
	th, first := threadOf("th-1", "pat-a")
	if _, _, _, err := one.CreateThread(ctx, th, first); err != nil {
		t.Fatal(err)
	}
	head, err := one.InboxHead(ctx, "ph-1")
	if err != nil {
		t.Fatal(err)
	}
	head0, err := raw.HGet(ctx, "mtm:{p:pat-a}:parts", "head").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	reply := store.Message{ClientMessageID: "cm-2", AuthorID: "rph-1", AuthorRole: store.RolePharmacist, Body: "Not with that one.", SentAt: msgT0}
	if _, _, _, err := one.AppendMessage(ctx, "th-1", reply, answer); err != nil {
		t.Fatal(err)
	}
	changes, err := one.InboxChanges(ctx, "ph-1", head, 10)
	if err != nil || len(changes) != 1 || changes[0].Thread.State != store.ThreadAnswered {
		t.Fatalf("InboxChanges after the flush: %+v, %v; want the answered thread past cursor %d", changes, err, head)
	}
	answered, err := one.ListInbox(ctx, "ph-1", store.ThreadAnswered, "", 10)
	if err != nil || len(answered) != 1 {
		t.Fatalf("answered inbox: %+v, %v", answered, err)
	}
	if open, err := raw.ZCard(ctx, "mtm:{ph:ph-1}:inbox:open").Result(); err != nil || open != 0 {
		t.Fatalf("open inbox keeps %d entries (%v), want the moved thread's entry removed", open, err)
	}
	if head, err := raw.HGet(ctx, "mtm:{p:pat-a}:parts", "head").Int64(); err != nil || head != head0+1 {
		t.Fatalf("patient's change log head %d → %d (%v): want the thread's change logged once", head0, head, err)
	}
}

// A message whose first attempt loses a compare-and-set to another
// instance's write lands once, moves its thread to the inbox of its new
// state, and leaves no entry of the lost attempt behind (on one node the
// entry is written by the append script, so an attempt that writes no
// thread writes no entry). A retry of the stored message adds nothing.
func TestConflictedAppendLeavesNoInboxEntry(t *testing.T) {
	ctx := context.Background()
	one, two, raw := twoStores(t)
	th, first := threadOf("th-1", "pat-a")
	if _, _, _, err := one.CreateThread(ctx, th, first); err != nil {
		t.Fatal(err)
	}
	reply := store.Message{ClientMessageID: "cm-2", AuthorID: "rph-1", AuthorRole: store.RolePharmacist, Body: "Not with that one.", SentAt: msgT0}
	attempts := 0
	answerLate := func(t0 store.Thread) (store.Thread, error) {
		attempts++
		if attempts == 1 { // another instance writes the thread meanwhile
			if _, err := two.UpdateThread(ctx, "th-1", func(o store.Thread) (store.Thread, error) {
				o.ReadThrough = map[string]int64{"pat-a": 1}
				return o, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		t0.State, t0.StateSince, t0.ClaimedBy = store.ThreadAnswered, msgT0.Add(time.Duration(attempts)*time.Minute), "rph-1"
		return t0, nil
	}
	for try := range 2 {
		_, got, created, err := one.AppendMessage(ctx, "th-1", reply, answerLate)
		if err != nil || got.Seq != 2 || created != (try == 0) {
			t.Fatalf("append try %d: seq %d, created %v, %v; want seq 2, created only the first time", try, got.Seq, created, err)
		}
	}
	if attempts != 2 {
		t.Fatalf("fn ran %d times, want 2 (one conflict, then the stored attempt; the retry finds the message)", attempts)
	}
	msgs, err := one.ListMessages(ctx, "th-1", 0, 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("messages: %d, %v; want the first and the reply once", len(msgs), err)
	}
	answered, err := one.ListInbox(ctx, "ph-1", store.ThreadAnswered, "", 10)
	if err != nil || len(answered) != 1 || !answered[0].StateSince.Equal(msgT0.Add(2*time.Minute)) {
		t.Fatalf("answered inbox: %+v, %v; want the thread as the stored attempt left it", answered, err)
	}
	if n, err := raw.ZCard(ctx, "mtm:{ph:ph-1}:inbox:answered").Result(); err != nil || n != 1 {
		t.Fatalf("answered inbox holds %d entries (%v), want 1: the lost attempt's entry was left behind", n, err)
	}
	if n, err := raw.ZCard(ctx, "mtm:{ph:ph-1}:inbox:open").Result(); err != nil || n != 0 {
		t.Fatalf("open inbox holds %d entries (%v), want the moved thread's entry removed", n, err)
	}
}

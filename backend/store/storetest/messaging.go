package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// newThread is an open thread of patient pat-1 at pharmacy ph-1, started
// at t0+minute minutes, with its first message.
func newThread(id string, minute int) (store.Thread, store.Message) {
	at := t0.Add(time.Duration(minute) * time.Minute)
	th := store.Thread{ID: id, PatientID: "pat-1", PharmacyID: "ph-1", Subject: "Ibuprofen with my new blood thinner?",
		StartedBy: "cg-1", State: store.ThreadOpen, StateSince: at, ReadThrough: map[string]int64{"cg-1": 1},
		CreatedAt: at, UpdatedAt: at}
	return th, message("cg-1", "cm-"+id, "Can Dad take ibuprofen?", at)
}

func message(author, clientID, body string, at time.Time) store.Message {
	return store.Message{ClientMessageID: clientID, AuthorID: author, AuthorRole: store.RoleCaregiver, AuthorName: "Carol", Body: body, SentAt: at}
}

// sameThread fails the test unless got and want hold the same data.
func sameThread(t *testing.T, op string, got, want store.Thread) {
	t.Helper()
	g, w := got, want
	for _, x := range []*store.Thread{&g, &w} {
		normValue(reflect.ValueOf(x).Elem())
		if len(x.ReadThrough) == 0 {
			x.ReadThrough = nil
		}
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: thread differs:\n%s", op, diffFields(reflect.ValueOf(g), reflect.ValueOf(w), "Thread"))
	}
}

func sameMessage(t *testing.T, op string, got, want store.Message) {
	t.Helper()
	g, w := got, want
	normValue(reflect.ValueOf(&g).Elem())
	normValue(reflect.ValueOf(&w).Elem())
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %+v, want %+v", op, got, want)
	}
}

func threadIDs(ts []store.Thread) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func seqs(ms []store.Message) []int64 {
	out := []int64{}
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// claim is an UpdateThread closure moving a thread to claimed at at.
func claim(by string, at time.Time) func(store.Thread) (store.Thread, error) {
	return func(t store.Thread) (store.Thread, error) {
		t.State, t.StateSince, t.ClaimedBy, t.UpdatedAt = store.ThreadClaimed, at, by, at
		return t, nil
	}
}

func noChange(t store.Thread) (store.Thread, error) { return t, nil }

var messagingCases = []testCase{
	{"CreateThreadThenReadItBack", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		th, first := newThread("th-1", 0)
		got, msg, created, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		if !created {
			t.Fatal("CreateThread of a new id: created = false")
		}
		want := th
		want.Version, want.LastSeq = 1, 1
		sameThread(t, "CreateThread", got, want)
		first.ThreadID, first.Seq = "th-1", 1
		sameMessage(t, "CreateThread message", msg, first)
		stored, err := s.GetThread(ctx, "th-1")
		must(t, "GetThread", err)
		sameThread(t, "GetThread", stored, want)
		msgs, err := s.ListMessages(ctx, "th-1", 0, 10)
		must(t, "ListMessages", err)
		if len(msgs) != 1 {
			t.Fatalf("ListMessages: %d messages, want 1", len(msgs))
		}
		sameMessage(t, "ListMessages[0]", msgs[0], first)
		pts, err := s.ListPatientThreads(ctx, "pat-1", "", 10)
		must(t, "ListPatientThreads", err)
		if ids := threadIDs(pts); !slices.Equal(ids, []string{"th-1"}) {
			t.Fatalf("ListPatientThreads = %v, want [th-1]", ids)
		}
		open, err := s.ListInbox(ctx, "ph-1", store.ThreadOpen, "", 10)
		must(t, "ListInbox", err)
		if ids := threadIDs(open); !slices.Equal(ids, []string{"th-1"}) {
			t.Fatalf("ListInbox(open) = %v, want [th-1]", ids)
		}
		other, err := s.ListInbox(ctx, "ph-2", store.ThreadOpen, "", 10)
		must(t, "ListInbox other pharmacy", err)
		if len(other) != 0 {
			t.Fatalf("another pharmacy's inbox lists %v", threadIDs(other))
		}
		head, err := s.InboxHead(ctx, "ph-1")
		must(t, "InboxHead", err)
		if head <= 0 {
			t.Fatalf("InboxHead after a new thread = %d, want > 0", head)
		}
	}},
	{"CreateThreadIsIdempotent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		retry, retryMsg := newThread("th-1", 5) // a retry a few minutes later
		retryMsg.Body = "changed"
		got, msg, created, err := s.CreateThread(ctx, retry, retryMsg)
		must(t, "CreateThread retry", err)
		if created {
			t.Fatal("retried CreateThread: created = true")
		}
		sameTime(t, "retried CreateThread's CreatedAt", got.CreatedAt, th.CreatedAt)
		if msg.Body != first.Body || msg.Seq != 1 {
			t.Fatalf("retried CreateThread returned message %+v, want the original", msg)
		}
		msgs, err := s.ListMessages(ctx, "th-1", 0, 10)
		must(t, "ListMessages", err)
		if len(msgs) != 1 {
			t.Fatalf("after a retried create the thread has %d messages, want 1", len(msgs))
		}
		pts, err := s.ListPatientThreads(ctx, "pat-1", "", 10)
		must(t, "ListPatientThreads", err)
		open, err := s.ListInbox(ctx, "ph-1", store.ThreadOpen, "", 10)
		must(t, "ListInbox", err)
		if len(pts) != 1 || len(open) != 1 {
			t.Fatalf("after a retried create: %d patient threads, %d open in the inbox; want 1 and 1", len(pts), len(open))
		}
	}},
	{"AppendMessageIsIdempotent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		reply := store.Message{ClientMessageID: "cm-reply", AuthorID: "rph-1", AuthorRole: store.RolePharmacist, AuthorName: "RPh",
			Body: "Please avoid ibuprofen; acetaminophen is safer.", SentAt: t0.Add(time.Hour)}
		answer := func(tt store.Thread) (store.Thread, error) {
			tt.State, tt.StateSince, tt.ClaimedBy = store.ThreadAnswered, t0.Add(time.Hour), "rph-1"
			return tt, nil
		}
		got, msg, created, err := s.AppendMessage(ctx, "th-1", reply, answer)
		must(t, "AppendMessage", err)
		if !created || msg.Seq != 2 || got.LastSeq != 2 || got.State != store.ThreadAnswered || got.Version != 2 {
			t.Fatalf("AppendMessage: created=%v seq=%d thread LastSeq=%d State=%s Version=%d; want true 2 2 answered 2",
				created, msg.Seq, got.LastSeq, got.State, got.Version)
		}
		for i := range 3 {
			called := false
			got2, msg2, created2, err := s.AppendMessage(ctx, "th-1", reply, func(tt store.Thread) (store.Thread, error) {
				called = true
				return tt, nil
			})
			must(t, fmt.Sprintf("retry %d", i), err)
			if created2 || called || msg2.Seq != 2 || got2.LastSeq != 2 || got2.Version != 2 {
				t.Fatalf("retry %d: created=%v fn called=%v seq=%d LastSeq=%d Version=%d; want the original, nothing new",
					i, created2, called, msg2.Seq, got2.LastSeq, got2.Version)
			}
			sameMessage(t, "retry's message", msg2, msg)
		}
		// The same client id from another author is another message.
		other := message("pat-1", "cm-reply", "thanks", t0.Add(2*time.Hour))
		_, msg3, created3, err := s.AppendMessage(ctx, "th-1", other, noChange)
		must(t, "AppendMessage other author", err)
		if !created3 || msg3.Seq != 3 {
			t.Fatalf("same client id, other author: created=%v seq=%d; want true 3", created3, msg3.Seq)
		}
		msgs, err := s.ListMessages(ctx, "th-1", 0, 10)
		must(t, "ListMessages", err)
		if got := seqs(msgs); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Fatalf("messages %v, want [1 2 3]", got)
		}
	}},
	{"ConcurrentAppendsGetDistinctContiguousSeqs", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		const writers, each = 6, 5
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					m := message(fmt.Sprintf("au-%d", w), fmt.Sprintf("cm-%d", i), "x", t0)
					if _, _, _, err := s.AppendMessage(ctx, "th-1", m, noChange); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent AppendMessage: %v", err)
		}
		msgs, err := s.ListMessages(ctx, "th-1", 0, 100)
		must(t, "ListMessages", err)
		for i, m := range msgs {
			if m.Seq != int64(i+1) {
				t.Fatalf("message %d has seq %d: seqs %v", i, m.Seq, seqs(msgs))
			}
		}
		if len(msgs) != 1+writers*each {
			t.Fatalf("%d messages, want %d", len(msgs), 1+writers*each)
		}
		got, err := s.GetThread(ctx, "th-1")
		must(t, "GetThread", err)
		if got.LastSeq != int64(len(msgs)) {
			t.Fatalf("LastSeq = %d, want %d", got.LastSeq, len(msgs))
		}
	}},
	{"ListMessagesAfterACursor", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		for i := range 4 {
			_, _, _, err := s.AppendMessage(ctx, "th-1", message("cg-1", fmt.Sprintf("cm-%d", i), "x", t0), noChange)
			must(t, "AppendMessage", err)
		}
		for _, tc := range []struct {
			after int64
			limit int
			want  []int64
		}{{0, 10, []int64{1, 2, 3, 4, 5}}, {2, 2, []int64{3, 4}}, {5, 10, []int64{}}, {4, 0, []int64{}}} {
			msgs, err := s.ListMessages(ctx, "th-1", tc.after, tc.limit)
			must(t, "ListMessages", err)
			if got := seqs(msgs); !slices.Equal(got, tc.want) {
				t.Errorf("ListMessages(after %d, limit %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
			}
		}
		msgs, err := s.ListMessages(ctx, "th-none", 0, 10)
		must(t, "ListMessages unknown thread", err)
		if len(msgs) != 0 {
			t.Fatalf("unknown thread has %d messages", len(msgs))
		}
	}},
	{"UpdateThreadMovesItInTheInboxAndFeed", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for i, id := range []string{"th-1", "th-2", "th-3"} {
			th, first := newThread(id, i)
			_, _, _, err := s.CreateThread(ctx, th, first)
			must(t, "CreateThread "+id, err)
		}
		head, err := s.InboxHead(ctx, "ph-1")
		must(t, "InboxHead", err)
		got, err := s.UpdateThread(ctx, "th-1", claim("rph-1", t0.Add(time.Hour)))
		must(t, "UpdateThread", err)
		if got.State != store.ThreadClaimed || got.ClaimedBy != "rph-1" || got.Version != 2 {
			t.Fatalf("UpdateThread = state %s by %q version %d", got.State, got.ClaimedBy, got.Version)
		}
		open, err := s.ListInbox(ctx, "ph-1", store.ThreadOpen, "", 10)
		must(t, "ListInbox open", err)
		if ids := threadIDs(open); !slices.Equal(ids, []string{"th-2", "th-3"}) {
			t.Fatalf("open = %v, want [th-2 th-3]", ids)
		}
		claimed, err := s.ListInbox(ctx, "ph-1", store.ThreadClaimed, "", 10)
		must(t, "ListInbox claimed", err)
		if ids := threadIDs(claimed); !slices.Equal(ids, []string{"th-1"}) {
			t.Fatalf("claimed = %v, want [th-1]", ids)
		}
		changes, err := s.InboxChanges(ctx, "ph-1", head, 10)
		must(t, "InboxChanges", err)
		if len(changes) != 1 || changes[0].Thread.ID != "th-1" || changes[0].Thread.State != store.ThreadClaimed || changes[0].Cursor <= head {
			t.Fatalf("InboxChanges after the claim = %+v, want th-1 claimed past %d", changes, head)
		}
		all, err := s.InboxChanges(ctx, "ph-1", 0, 10)
		must(t, "InboxChanges from 0", err)
		var ids []string
		for i, c := range all {
			ids = append(ids, c.Thread.ID)
			if i > 0 && c.Cursor <= all[i-1].Cursor {
				t.Fatalf("feed cursors not increasing: %+v", all)
			}
		}
		if !slices.Equal(ids, []string{"th-2", "th-3", "th-1"}) {
			t.Fatalf("feed = %v, want each thread once at its latest change [th-2 th-3 th-1]", ids)
		}
		newHead, err := s.InboxHead(ctx, "ph-1")
		must(t, "InboxHead", err)
		if newHead != all[len(all)-1].Cursor {
			t.Fatalf("InboxHead = %d, want the last feed cursor %d", newHead, all[len(all)-1].Cursor)
		}
	}},
	{"ListingsPageWithCursors", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for i := range 5 {
			th, first := newThread(fmt.Sprintf("th-%d", i), i)
			_, _, _, err := s.CreateThread(ctx, th, first)
			must(t, "CreateThread", err)
		}
		var pages [][]string
		before := ""
		for {
			ts, err := s.ListPatientThreads(ctx, "pat-1", before, 2)
			must(t, "ListPatientThreads", err)
			if len(ts) == 0 {
				break
			}
			pages = append(pages, threadIDs(ts))
			last := ts[len(ts)-1]
			before = store.ThreadIndexKey(last.CreatedAt, last.ID)
		}
		if fmt.Sprint(pages) != "[[th-4 th-3] [th-2 th-1] [th-0]]" {
			t.Fatalf("patient pages = %v, want newest first in pages of 2", pages)
		}
		pages, after := nil, ""
		for {
			ts, err := s.ListInbox(ctx, "ph-1", store.ThreadOpen, after, 2)
			must(t, "ListInbox", err)
			if len(ts) == 0 {
				break
			}
			pages = append(pages, threadIDs(ts))
			last := ts[len(ts)-1]
			after = store.ThreadIndexKey(last.StateSince, last.ID)
		}
		if fmt.Sprint(pages) != "[[th-0 th-1] [th-2 th-3] [th-4]]" {
			t.Fatalf("inbox pages = %v, want oldest first in pages of 2", pages)
		}
	}},
	{"FailedClosureWritesNothing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		head, err := s.InboxHead(ctx, "ph-1")
		must(t, "InboxHead", err)
		boom := errors.New("refused")
		_, err = s.UpdateThread(ctx, "th-1", func(store.Thread) (store.Thread, error) { return store.Thread{}, boom })
		wantErr(t, "UpdateThread with a failing fn", err, boom)
		_, _, _, err = s.AppendMessage(ctx, "th-1", message("cg-1", "cm-2", "x", t0), func(store.Thread) (store.Thread, error) { return store.Thread{}, boom })
		wantErr(t, "AppendMessage with a failing fn", err, boom)
		_, err = s.UpdateThread(ctx, "th-1", func(tt store.Thread) (store.Thread, error) { tt.PatientID = "pat-2"; return tt, nil })
		if err == nil {
			t.Fatal("UpdateThread that changes the patient: nil error")
		}
		got, err := s.GetThread(ctx, "th-1")
		must(t, "GetThread", err)
		if got.Version != 1 || got.LastSeq != 1 || got.PatientID != "pat-1" {
			t.Fatalf("after refused updates: version %d, LastSeq %d, patient %s", got.Version, got.LastSeq, got.PatientID)
		}
		msgs, err := s.ListMessages(ctx, "th-1", 0, 10)
		must(t, "ListMessages", err)
		if len(msgs) != 1 {
			t.Fatalf("after a refused append: %d messages", len(msgs))
		}
		if h, err := s.InboxHead(ctx, "ph-1"); err != nil || h != head {
			t.Fatalf("InboxHead after refused updates = %d, %v; want %d", h, err, head)
		}
	}},
	{"UnknownThread", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.GetThread(ctx, "th-none")
		wantErr(t, "GetThread", err, store.ErrNotFound)
		_, err = s.UpdateThread(ctx, "th-none", noChange)
		wantErr(t, "UpdateThread", err, store.ErrNotFound)
		_, _, _, err = s.AppendMessage(ctx, "th-none", message("cg-1", "cm-1", "x", t0), noChange)
		wantErr(t, "AppendMessage", err, store.ErrNotFound)
		h, err := s.InboxHead(ctx, "ph-none")
		must(t, "InboxHead", err)
		ch, err := s.InboxChanges(ctx, "ph-none", 0, 10)
		must(t, "InboxChanges", err)
		if h != 0 || len(ch) != 0 {
			t.Fatalf("empty pharmacy: head %d, %d changes", h, len(ch))
		}
	}},
}

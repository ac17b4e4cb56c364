package api_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/wake"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// instance starts another API server that shares base's clock and signing
// keys (tokens from one work on the other) over st, with the messaging
// settings set by cfg.
func instance(t testing.TB, base *env, st store.Store, cfg func(*api.Config)) *env {
	t.Helper()
	sink := &memorySink{}
	rec, err := audit.NewRecorder(st, sink, 0, base.clock.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := api.Config{Store: st, Tokens: base.tokens, Logger: slog.New(slog.DiscardHandler), Now: base.clock.Now}
	if cfg != nil {
		cfg(&c)
	}
	check, err := api.NewRequestCheck()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	err = api.Register(mux, c,
		connect.WithInterceptors(auth.NewInterceptor(base.tokens, api.PublicProcedures()), check, audit.NewInterceptor(rec)),
		connect.WithReadMaxBytes(maxBody))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &env{t: t, store: st, clock: base.clock, keys: base.keys, tokens: base.tokens, srv: srv, opts: base.opts, archive: sink}
}

func (e *env) msgClient(token string) mtmv1connect.MessagingServiceClient {
	return mtmv1connect.NewMessagingServiceClient(e.srv.Client(), e.srv.URL, e.clientOpts(token)...)
}

// pushes records the reply pushes the service asks for.
type pushes struct {
	mu    sync.Mutex
	calls [][]string
}

func (p *pushes) PharmacistReplied(_ context.Context, pt store.Patient, threadID string, recipients []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, append([]string{pt.ID, threadID}, recipients...))
	return nil
}

func (p *pushes) all() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func startThread(t *testing.T, c mtmv1connect.MessagingServiceClient, patientID, clientID, body string) *mtmv1.StartThreadResponse {
	t.Helper()
	res, err := c.StartThread(context.Background(), req(&mtmv1.StartThreadRequest{PatientId: patientID, Subject: "Ibuprofen?", ClientMessageId: clientID, Body: body}))
	if err != nil {
		t.Fatalf("StartThread: %v", err)
	}
	return res.Msg
}

func send(t *testing.T, c mtmv1connect.MessagingServiceClient, threadID, clientID, body string) *mtmv1.Message {
	t.Helper()
	res, err := c.SendMessage(context.Background(), req(&mtmv1.SendMessageRequest{ThreadId: threadID, ClientMessageId: clientID, Body: body}))
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	return res.Msg.GetMessage()
}

func messageSeqs(t *testing.T, c mtmv1connect.MessagingServiceClient, threadID string) []int64 {
	t.Helper()
	res, err := c.ListMessages(context.Background(), req(&mtmv1.ListMessagesRequest{ThreadId: threadID}))
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	var out []int64
	for _, m := range res.Msg.GetMessages() {
		out = append(out, m.GetSeq())
	}
	return out
}

// watcher reads a thread stream in the background.
type watcher struct {
	msgs   chan *mtmv1.Message
	beats  chan struct{}
	done   chan error
	cancel context.CancelFunc
}

func watchThread(t *testing.T, c mtmv1connect.MessagingServiceClient, threadID string, after int64) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.WatchThread(ctx, req(&mtmv1.WatchThreadRequest{ThreadId: threadID, AfterSeq: after}))
	if err != nil {
		cancel()
		t.Fatalf("WatchThread: %v", err)
	}
	w := &watcher{msgs: make(chan *mtmv1.Message, 100), beats: make(chan struct{}, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer s.Close()
		for s.Receive() {
			if m := s.Msg().GetMessage(); m != nil {
				w.msgs <- m
			} else {
				select {
				case w.beats <- struct{}{}:
				default:
				}
			}
		}
		w.done <- s.Err()
	}()
	t.Cleanup(cancel)
	return w
}

// next returns the next message, failing after a generous wait.
func (w *watcher) next(t *testing.T) *mtmv1.Message {
	t.Helper()
	select {
	case m := <-w.msgs:
		return m
	case err := <-w.done:
		t.Fatalf("stream ended (%v) while a message was expected", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no message on the stream")
	}
	return nil
}

// quiet fails the test if a message arrives within a short while.
func (w *watcher) quiet(t *testing.T) {
	t.Helper()
	select {
	case m := <-w.msgs:
		t.Fatalf("unexpected message seq %d (repeated or out of place)", m.GetSeq())
	case <-time.After(200 * time.Millisecond):
	}
}

func TestStartAndSendAreIdempotentUnderRetries(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		rph := e.pharmacy("ph_1", "rph@one.test")
		pt := e.enroll(rph, "Pat")
		c := e.msgClient(pt.token)
		first := startThread(t, c, pt.id, "cm_start_0001", "Can I take ibuprofen?")
		for range 3 {
			again := startThread(t, c, pt.id, "cm_start_0001", "Can I take ibuprofen?")
			if again.GetThread().GetId() != first.GetThread().GetId() || again.GetMessage().GetSeq() != 1 {
				t.Fatalf("retried StartThread gave thread %s message %d, want %s and 1", again.GetThread().GetId(), again.GetMessage().GetSeq(), first.GetThread().GetId())
			}
		}
		th := first.GetThread().GetId()
		var wg sync.WaitGroup
		got := make([]*mtmv1.Message, 8)
		for i := range got {
			wg.Go(func() {
				res, err := c.SendMessage(context.Background(), req(&mtmv1.SendMessageRequest{ThreadId: th, ClientMessageId: "cm_send_0001", Body: "Also, with warfarin?"}))
				if err != nil {
					t.Errorf("retry %d: %v", i, err)
					return
				}
				got[i] = res.Msg.GetMessage()
			})
		}
		wg.Wait()
		for i, m := range got {
			if m.GetSeq() != 2 || m.GetId() != got[0].GetId() {
				t.Fatalf("retry %d returned seq %d id %s, want every retry to return message 2", i, m.GetSeq(), m.GetId())
			}
		}
		if seqs := messageSeqs(t, c, th); !slices.Equal(seqs, []int64{1, 2}) {
			t.Fatalf("after retries the thread holds %v, want [1 2]", seqs)
		}
		threads, err := c.ListThreads(context.Background(), req(&mtmv1.ListThreadsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(threads.Msg.GetThreads()); n != 1 {
			t.Fatalf("patient has %d threads after retried starts, want 1", n)
		}
		_, err = c.SendMessage(context.Background(), req(&mtmv1.SendMessageRequest{ThreadId: th, ClientMessageId: "cm_send_0001", Body: "something else"}))
		wantCode(t, err, connect.CodeAlreadyExists)
	})
}

func TestWatchThreadResumesFromCursorExactlyOnce(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, base *env) {
		e := instance(t, base, base.store, func(c *api.Config) { c.StreamHeartbeat = 50 * time.Millisecond })
		rph := e.pharmacy("ph_1", "rph@one.test")
		pt := e.enroll(rph, "Pat")
		c, staffC := e.msgClient(pt.token), e.msgClient(rph)
		th := startThread(t, c, pt.id, "cm_start_0001", "question 1").GetThread().GetId()
		w := watchThread(t, c, th, 0)
		var seen []int64
		seen = append(seen, w.next(t).GetSeq())
		send(t, staffC, th, "cm_reply_0001", "answer 1")
		send(t, c, th, "cm_send_00002", "question 2")
		seen = append(seen, w.next(t).GetSeq(), w.next(t).GetSeq())
		for len(w.beats) > 0 { // the stream's first response is a heartbeat too
			<-w.beats
		}
		select {
		case <-w.beats:
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat on an idle stream")
		}
		w.cancel()
		// Messages sent while the app is away.
		send(t, staffC, th, "cm_reply_0002", "answer 2")
		send(t, c, th, "cm_send_00003", "question 3")
		w2 := watchThread(t, c, th, seen[len(seen)-1])
		seen = append(seen, w2.next(t).GetSeq(), w2.next(t).GetSeq())
		send(t, staffC, th, "cm_reply_0003", "answer 3")
		seen = append(seen, w2.next(t).GetSeq())
		w2.quiet(t)
		if !slices.Equal(seen, []int64{1, 2, 3, 4, 5, 6}) {
			t.Fatalf("stream delivered %v, want every message exactly once in order", seen)
		}
	})
}

func TestThreadWorkflowPushEscalationAndMetrics(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, base *env) {
		reg := prometheus.NewRegistry()
		push := &pushes{}
		e := instance(t, base, base.store, func(c *api.Config) {
			c.Metrics, c.ReplyNotifier, c.EscalateAfter = reg, push, 10*time.Minute
		})
		ctx := context.Background()
		rph := e.pharmacy("ph_1", "rph@one.test")
		if _, err := e.careClient(rph).CreatePharmacist(ctx, req(&mtmv1.CreatePharmacistRequest{Email: "two@one.test", Password: "a long enough password", DisplayName: "RPh Two"})); err != nil {
			t.Fatal(err)
		}
		rph2 := e.login("two@one.test", "a long enough password")
		pt := e.enroll(rph, "Pat")
		cg := e.caregiver(pt, "daughter@cg.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_MESSAGE})
		cgC, ptC, staffC, staff2C := e.msgClient(cg.token), e.msgClient(pt.token), e.msgClient(rph), e.msgClient(rph2)
		th := startThread(t, cgC, pt.id, "cm_start_0001", "Can Dad take ibuprofen?").GetThread().GetId()

		inbox := func(state mtmv1.ThreadState) []*mtmv1.Thread {
			t.Helper()
			res, err := staffC.ListInbox(ctx, req(&mtmv1.ListInboxRequest{State: state}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetThreads()
		}
		open := inbox(mtmv1.ThreadState_THREAD_STATE_OPEN)
		if len(open) != 1 || open[0].GetId() != th || open[0].GetEscalated() {
			t.Fatalf("open inbox = %v, want the new thread, not escalated", open)
		}
		// The queue shows whose question it is and who asked, without a
		// record read per thread.
		if open[0].GetPatientName() != "Pat Tester" || !open[0].GetStartedByCaregiver() {
			t.Fatalf("inbox thread names %q, started by caregiver %v; want Pat Tester, true", open[0].GetPatientName(), open[0].GetStartedByCaregiver())
		}
		own, err := ptC.ListThreads(ctx, req(&mtmv1.ListThreadsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if ts := own.Msg.GetThreads(); len(ts) != 1 || !ts[0].GetStartedByCaregiver() {
			t.Fatalf("the patient's own list shows %v; want the thread, started by the caregiver", ts)
		}
		e.clock.Advance(11 * time.Minute) // access tokens last 15 minutes
		if open = inbox(mtmv1.ThreadState_THREAD_STATE_UNSPECIFIED); len(open) != 1 || !open[0].GetEscalated() {
			t.Fatalf("after 11 minutes unclaimed the inbox shows %v, want it escalated", open)
		}
		claimed, err := staffC.ClaimThread(ctx, req(&mtmv1.ClaimThreadRequest{ThreadId: th}))
		if err != nil {
			t.Fatal(err)
		}
		if claimed.Msg.GetThread().GetState() != mtmv1.ThreadState_THREAD_STATE_CLAIMED {
			t.Fatalf("claim left state %v", claimed.Msg.GetThread().GetState())
		}
		_, err = staff2C.ClaimThread(ctx, req(&mtmv1.ClaimThreadRequest{ThreadId: th}))
		wantCode(t, err, connect.CodeFailedPrecondition)

		send(t, staffC, th, "cm_reply_0001", "Please use acetaminophen instead.")
		send(t, staffC, th, "cm_reply_0001", "Please use acetaminophen instead.") // a retry pushes nothing more
		if got := push.all(); len(got) != 1 || !slices.Equal(got[0], []string{pt.id, th, cg.id, pt.id}) {
			t.Fatalf("pushes = %v, want one to the asking caregiver and the patient", got)
		}
		mf, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var h *dto.Histogram
		for _, f := range mf {
			if f.GetName() == "mtm_messaging_first_response_seconds" {
				h = f.GetMetric()[0].GetHistogram()
			}
		}
		if h == nil || h.GetSampleCount() != 1 || h.GetSampleSum() != (11*time.Minute).Seconds() {
			t.Fatalf("first-response histogram = %v, want one sample of 660s", h)
		}
		list, err := ptC.ListThreads(ctx, req(&mtmv1.ListThreadsRequest{PatientId: pt.id}))
		if err != nil {
			t.Fatal(err)
		}
		if got := list.Msg.GetThreads()[0]; got.GetState() != mtmv1.ThreadState_THREAD_STATE_ANSWERED || got.GetUnreadCount() != 2 {
			t.Fatalf("patient sees state %v unread %d, want answered and 2", got.GetState(), got.GetUnreadCount())
		}
		read, err := ptC.MarkRead(ctx, req(&mtmv1.MarkReadRequest{ThreadId: th, ReadThroughSeq: 2}))
		if err != nil || read.Msg.GetUnreadCount() != 0 {
			t.Fatalf("MarkRead = %v, %v; want 0 unread", read, err)
		}

		state := func() (mtmv1.ThreadState, string) {
			t.Helper()
			res, err := ptC.ListThreads(ctx, req(&mtmv1.ListThreadsRequest{PatientId: pt.id}))
			if err != nil {
				t.Fatal(err)
			}
			return res.Msg.GetThreads()[0].GetState(), res.Msg.GetThreads()[0].GetClaimedBy()
		}
		send(t, ptC, th, "cm_patient_01", "Thanks, and for a headache?")
		if st, by := state(); st != mtmv1.ThreadState_THREAD_STATE_CLAIMED || by == "" {
			t.Fatalf("patient follow-up on an answered thread: %v by %q, want claimed by the same pharmacist", st, by)
		}
		if _, err := staffC.CloseThread(ctx, req(&mtmv1.CloseThreadRequest{ThreadId: th})); err != nil {
			t.Fatal(err)
		}
		if st, _ := state(); st != mtmv1.ThreadState_THREAD_STATE_CLOSED {
			t.Fatalf("after close: %v", st)
		}
		send(t, cgC, th, "cm_cg_again01", "One more question")
		if st, by := state(); st != mtmv1.ThreadState_THREAD_STATE_OPEN || by != "" {
			t.Fatalf("writing to a closed thread: %v by %q, want reopened, unclaimed", st, by)
		}
		if len(push.all()) != 1 {
			t.Fatalf("patient-side messages pushed: %v", push.all())
		}
	})
}

func TestRevokedCaregiverLosesTheThread(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, base *env) {
		e := instance(t, base, base.store, func(c *api.Config) { c.StreamHeartbeat = 50 * time.Millisecond })
		ctx := context.Background()
		rph := e.pharmacy("ph_1", "rph@one.test")
		pt := e.enroll(rph, "Pat")
		cg := e.caregiver(pt, "son@cg.test", allScopes())
		cgC := e.msgClient(cg.token)
		th := startThread(t, cgC, pt.id, "cm_start_0001", "Is this dose right?").GetThread().GetId()
		w := watchThread(t, cgC, th, 0)
		w.next(t)
		if _, err := e.patientClient(pt.token).RevokeCaregiver(ctx, req(&mtmv1.RevokeCaregiverRequest{PatientId: pt.id, GrantId: cg.grant})); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-w.done:
			wantCode(t, err, connect.CodeNotFound)
		case <-time.After(10 * time.Second):
			t.Fatal("the revoked caregiver's stream is still open")
		}
		_, err := cgC.SendMessage(ctx, req(&mtmv1.SendMessageRequest{ThreadId: th, ClientMessageId: "cm_after_rev1", Body: "still there?"}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = cgC.ListMessages(ctx, req(&mtmv1.ListMessagesRequest{ThreadId: th}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = cgC.ListThreads(ctx, req(&mtmv1.ListThreadsRequest{PatientId: pt.id}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = cgC.MarkRead(ctx, req(&mtmv1.MarkReadRequest{ThreadId: th, ReadThroughSeq: 1}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = cgC.StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: pt.id, Subject: "x", ClientMessageId: "cm_after_rev2", Body: "x"}))
		wantCode(t, err, connect.CodeNotFound)
		if seqs := messageSeqs(t, e.msgClient(pt.token), th); !slices.Equal(seqs, []int64{1}) {
			t.Fatalf("thread holds %v after the revoked caregiver's attempts, want [1]", seqs)
		}
	})
}

func TestMessagingBadInputChangesNothing(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		rph := e.pharmacy("ph_1", "rph@one.test")
		far := e.pharmacy("ph_far", "rph@far.test")
		pt := e.enroll(rph, "Pat")
		ptC, farC := e.msgClient(pt.token), e.msgClient(far)
		th := startThread(t, ptC, pt.id, "cm_start_0001", "question").GetThread().GetId()
		msg := func(threadID, clientID, body string) error {
			_, err := ptC.SendMessage(ctx, req(&mtmv1.SendMessageRequest{ThreadId: threadID, ClientMessageId: clientID, Body: body}))
			return err
		}
		for _, tc := range []struct {
			name  string
			call  func() error
			code  connect.Code
			field string
		}{
			{"empty body", func() error { return msg(th, "cm_bad_00001", "") }, connect.CodeInvalidArgument, "body"},
			{"blank body", func() error { return msg(th, "cm_bad_00002", "  \n\t ") }, connect.CodeInvalidArgument, "body"},
			{"oversized body", func() error { return msg(th, "cm_bad_00003", strings.Repeat("a", 4001)) }, connect.CodeInvalidArgument, "body"},
			{"control characters", func() error { return msg(th, "cm_bad_00004", "hi\x1b[2J") }, connect.CodeInvalidArgument, "body"},
			{"short client id", func() error { return msg(th, "cm", "hi") }, connect.CodeInvalidArgument, "client_message_id"},
			{"bad thread id", func() error { return msg("th/../x", "cm_bad_00005", "hi") }, connect.CodeInvalidArgument, "thread_id"},
			{"wrong thread", func() error { return msg("th_doesnotexist", "cm_bad_00006", "hi") }, connect.CodeNotFound, ""},
			{"other pharmacy replies", func() error {
				_, err := farC.SendMessage(ctx, req(&mtmv1.SendMessageRequest{ThreadId: th, ClientMessageId: "cm_bad_00007", Body: "hi"}))
				return err
			}, connect.CodeNotFound, ""},
			{"other pharmacy claims", func() error {
				_, err := farC.ClaimThread(ctx, req(&mtmv1.ClaimThreadRequest{ThreadId: th}))
				return err
			}, connect.CodeNotFound, ""},
			{"other pharmacy closes", func() error {
				_, err := farC.CloseThread(ctx, req(&mtmv1.CloseThreadRequest{ThreadId: th}))
				return err
			}, connect.CodeNotFound, ""},
			{"blank subject", func() error {
				_, err := ptC.StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: pt.id, Subject: "   ", ClientMessageId: "cm_bad_00008", Body: "hi"}))
				return err
			}, connect.CodeInvalidArgument, "subject"},
			{"read past the end", func() error {
				_, err := ptC.MarkRead(ctx, req(&mtmv1.MarkReadRequest{ThreadId: th, ReadThroughSeq: 9}))
				return err
			}, connect.CodeInvalidArgument, "read_through_seq"},
			{"made-up page token", func() error {
				_, err := ptC.ListThreads(ctx, req(&mtmv1.ListThreadsRequest{PatientId: pt.id, PageToken: "nope"}))
				return err
			}, connect.CodeInvalidArgument, "page_token"},
			{"made-up inbox cursor", func() error {
				return firstOfStream(ctx, func(ctx context.Context) (*connect.ServerStreamForClient[mtmv1.WatchInboxResponse], error) {
					return e.msgClient(rph).WatchInbox(ctx, req(&mtmv1.WatchInboxRequest{Cursor: "x"}))
				})
			}, connect.CodeInvalidArgument, "cursor"},
			{"reused client id", func() error { return msg(th, "cm_start_0001", "a different question") }, connect.CodeAlreadyExists, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ce := wantCode(t, tc.call(), tc.code)
				if tc.field != "" {
					if f := violatedFields(t, ce); !slices.Contains(f, tc.field) {
						t.Fatalf("violations name %v, want %s", f, tc.field)
					}
				}
			})
		}
		if seqs := messageSeqs(t, ptC, th); !slices.Equal(seqs, []int64{1}) {
			t.Fatalf("after bad input the thread holds %v, want [1]", seqs)
		}
		res, err := e.msgClient(rph).ListInbox(ctx, req(&mtmv1.ListInboxRequest{State: mtmv1.ThreadState_THREAD_STATE_OPEN}))
		if err != nil || len(res.Msg.GetThreads()) != 1 || res.Msg.GetThreads()[0].GetClaimedBy() != "" {
			t.Fatalf("after bad input the inbox shows %v (%v), want the one open, unclaimed thread", res, err)
		}
	})
}

// redisPair is two API instances over two Redis clients of one private
// redis-server, each with its own wake-up subscription.
func redisPair(t *testing.T, base *env, heartbeat time.Duration) (a, b *env) {
	t.Helper()
	addr, _ := redistest.StartServer(t)
	kek := testKEK(t) // instances of one deployment share the KEK
	one := func() *env {
		st, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: kek})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		client := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { client.Close() })
		w, err := wake.NewRedis(t.Context(), client, "mtm", 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return instance(t, base, st, func(c *api.Config) { c.Wake, c.StreamHeartbeat = w, heartbeat })
	}
	return one(), one()
}

func TestTwoInstancesOnRedis(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, base *env) {
		// A heartbeat far longer than the test: only a wake-up from the
		// other instance can deliver in time.
		a, b := redisPair(t, base, time.Hour)
		ctx := context.Background()
		rph := a.pharmacy("ph_1", "rph@one.test")
		pt := a.enroll(rph, "Pat")

		inboxCtx, cancelInbox := context.WithCancel(ctx)
		inbox, err := a.msgClient(rph).WatchInbox(inboxCtx, req(&mtmv1.WatchInboxRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		defer inbox.Close()
		defer cancelInbox() // before Close, which would wait for the stream's end
		if !inbox.Receive() || inbox.Msg().GetThread() != nil {
			t.Fatalf("WatchInbox: want a first heartbeat, got %v (%v)", inbox.Msg(), inbox.Err())
		}
		th := startThread(t, b.msgClient(pt.token), pt.id, "cm_start_0001", "question").GetThread().GetId()
		if !inbox.Receive() || inbox.Msg().GetThread().GetId() != th {
			t.Fatalf("inbox watcher on A: got %v (%v), want the thread started on B", inbox.Msg(), inbox.Err())
		}
		cursor := inbox.Msg().GetCursor()

		w := watchThread(t, a.msgClient(pt.token), th, 1)
		reply := send(t, b.msgClient(rph), th, "cm_reply_0001", "answer")
		if got := w.next(t); got.GetSeq() != reply.GetSeq() || got.GetBody() != "answer" {
			t.Fatalf("watcher on A got %v, want the reply sent on B", got)
		}
		w.quiet(t)
		// The inbox resumes after its cursor on the other instance.
		resumedCtx, cancelResumed := context.WithCancel(ctx)
		resumed, err := b.msgClient(rph).WatchInbox(resumedCtx, req(&mtmv1.WatchInboxRequest{Cursor: cursor}))
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		defer cancelResumed()
		for resumed.Receive() {
			if th2 := resumed.Msg().GetThread(); th2 != nil {
				if th2.GetId() != th || th2.GetState() != mtmv1.ThreadState_THREAD_STATE_ANSWERED {
					t.Fatalf("resumed inbox: %v, want the answered thread", th2)
				}
				return
			}
		}
		t.Fatalf("resumed inbox ended: %v", resumed.Err())
	})
}

// latencyFlag enables TestSendToWatcherLatency, which prints figures:
//
//	go test ./backend/api -run TestSendToWatcherLatency -v -args -messaging.latency
var latencyFlag = flag.Bool("messaging.latency", false, "measure send-to-watcher latency across two Redis instances")

// TestSendToWatcherLatency sends messages at a steady rate through one
// instance and measures when they reach a watcher on the other, on Redis.
// It asserts nothing about time; it prints p50/p99.
func TestSendToWatcherLatency(t *testing.T) {
	if !*latencyFlag {
		t.Skip("pass -args -messaging.latency to measure")
	}
	base := newEnv(t)
	a, b := redisPair(t, base, time.Hour)
	rph := a.pharmacy("ph_1", "rph@one.test")
	const watchers, perWatcher, rate = 20, 25, 200 // messages per second in total
	type sent struct {
		seq int64
		at  time.Time
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var threads []string
	var patients []enrolled
	for i := range watchers {
		pt := a.enroll(rph, fmt.Sprintf("P%d", i))
		patients = append(patients, pt)
		threads = append(threads, startThread(t, b.msgClient(pt.token), pt.id, "cm_start_0001", "q").GetThread().GetId())
	}
	sentAt := make([]map[int64]time.Time, watchers)
	for i := range watchers {
		sentAt[i] = map[int64]time.Time{}
		w := watchThread(t, a.msgClient(patients[i].token), threads[i], 1)
		wg.Go(func() {
			for range perWatcher {
				m := w.next(t)
				now := time.Now()
				mu.Lock()
				for sentAt[i][m.GetSeq()].IsZero() {
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
				}
				lat = append(lat, now.Sub(sentAt[i][m.GetSeq()]))
				mu.Unlock()
			}
		})
	}
	staffB := b.msgClient(rph)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	start := time.Now()
	for n := range watchers * perWatcher {
		<-tick.C
		i := n % watchers
		at := time.Now()
		m := send(t, staffB, threads[i], fmt.Sprintf("cm_lat_%06d", n), "answer")
		mu.Lock()
		sentAt[i][m.GetSeq()] = at
		mu.Unlock()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	t.Logf("send-to-watcher latency across two instances on Redis: %d messages at %d/s to %d watchers (%.0f/s achieved): p50 %v, p99 %v, max %v",
		len(lat), rate, watchers, float64(len(lat))/elapsed.Seconds(), pct(0.5), pct(0.99), lat[len(lat)-1])
}

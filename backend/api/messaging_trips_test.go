package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/api"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
	"github.com/mtmapp/mtm/backend/wake"
	"github.com/mtmapp/mtm/notifications/push"
	"github.com/mtmapp/mtm/notifications/replies"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// roundTrips counts the requests a go-redis client sends (one per
// command, one per pipeline; redistest.Requests).
type roundTrips struct{ redistest.Requests }

// settled is the count once the instance has stopped talking to Redis for
// a while, so that work left running in the background by an earlier call
// (the warm-up's audit events and pushes) is not counted against the next
// one, and the next one's own is counted whether or not it ran before the
// call answered.
func (r *roundTrips) settled() int64 {
	n := r.N()
	for range 40 {
		time.Sleep(50 * time.Millisecond)
		m := r.N()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// countedInstance is an API instance on Redis (its own store client and
// wake-up subscription) whose Redis requests are counted. As mtmd, it
// pushes reply notices (replies.Notifier, here through a sender that only
// logs, to nowhere), so their reads are counted too.
func countedInstance(t testing.TB, base *env, addr string, trips *roundTrips) *env {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	client.AddHook(trips)
	st, err := redisstore.New(t.Context(), client, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w, err := wake.NewRedis(t.Context(), client, "mtm", 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	rn, err := replies.New(st, push.Log{Logger: slog.New(slog.DiscardHandler)}, slog.New(slog.DiscardHandler), base.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rn.Wait)
	return instance(t, base, st, func(c *api.Config) { c.Wake, c.StreamHeartbeat, c.ReplyNotifier = w, time.Hour, rn })
}

// withPhones registers a phone for the patient and one for the caregiver,
// so that a reply notice has somewhere to go.
func withPhones(t testing.TB, e *env, pt enrolled, cg caregiverOf) {
	t.Helper()
	for tok, who := range map[string]string{"tok-patient": pt.token, "tok-caregiver": cg.token} {
		if _, err := e.patientClient(who).RegisterDevice(context.Background(), req(&mtmv1.RegisterDeviceRequest{PatientId: pt.id, FcmToken: tok,
			Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_IOS})); err != nil {
			t.Fatal(err)
		}
	}
}

// wakeupSpy records the wake-up topics every instance on a Redis
// publishes (a pattern subscription of its own, as each mtmd holds).
type wakeupSpy struct{ ch <-chan *redis.Message }

func spyOnWakeups(t testing.TB, addr string) *wakeupSpy {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	ps := c.PSubscribe(t.Context(), "mtm:wake:*")
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &wakeupSpy{ch: ps.Channel()}
}

// since returns the topics published since the last call, sorted; call it
// once the instances are quiet (roundTrips.settled).
func (w *wakeupSpy) since() []string {
	var out []string
	for {
		select {
		case m := <-w.ch:
			out = append(out, m.Channel[len("mtm:wake:"):])
		case <-time.After(100 * time.Millisecond):
			slices.Sort(out)
			return out
		}
	}
}

// TestMessagingRoundTripsOnRedis counts what a message costs in requests
// to Redis: on the instance that stores it (SendMessage, from the patient
// side and from the pharmacist, with its audit event) and on the instance
// whose WatchThread delivers it (the wake-up's access check and read),
// and the wake-ups it publishes (each reaches every mtmd): its thread's
// and its pharmacy inbox's, the topics that streams watch, and no other.
// It also checks that the message arrives once, in order.
func TestMessagingRoundTripsOnRedis(t *testing.T) {
	base := newEnv(t)
	addr, _ := redistest.StartServer(t)
	var tripsA, tripsB roundTrips
	a := countedInstance(t, base, addr, &tripsA)
	b := countedInstance(t, base, addr, &tripsB)
	rph := a.pharmacy("ph_1", "rph@one.test")
	pt := a.enroll(rph, "Pat")
	cg := a.caregiver(pt, "son@cg.test", allScopes())
	withPhones(t, a, pt, cg)
	cgA, rphA := a.msgClient(cg.token), a.msgClient(rph)
	spy := spyOnWakeups(t, addr)
	th := startThread(t, cgA, pt.id, "cm_start_0001", "Is this dose right?").GetThread().GetId()
	w := watchThread(t, b.msgClient(cg.token), th, 1)
	// Warm up: each instance's first look at the thread, scripts loaded.
	send(t, rphA, th, "cm_warm_r", "warm-up reply")
	send(t, cgA, th, "cm_warm_q", "warm-up question")
	for range 2 {
		w.next(t)
	}
	wantTopics := []string{"inbox:ph_1", "thread:" + th}

	// What each side needs, in requests to Redis (each one a wait on a
	// busy machine). The sending instance: the patient's record (access),
	// the pharmacist's account (their name, read alongside), the thread
	// with its idempotency key and data key, the append script (with the
	// new inbox entry), the feed and change log (with the old inbox entry's
	// removal), the wake-ups, the audit event; for a pharmacist's reply,
	// the reply notice's read of the caregiver's account (the notice
	// decides from the patient's record the access check read). The watching instance: the patient's record (access), the
	// new messages with the thread and its data key. Before: 16 and 15 on
	// the sending side (without the reply notice), 5 on the watching; 10
	// and 7 with the inbox entry a request of its own and the notice
	// reading the patient's record again.
	for _, tc := range []struct {
		name            string
		from            func() *mtmv1.Message
		sending, watchg int64
	}{
		{"pharmacist's reply", func() *mtmv1.Message { return send(t, rphA, th, "cm_reply_01", "Yes, with food.") }, 8, 2},
		{"caregiver's question", func() *mtmv1.Message { return send(t, cgA, th, "cm_quest_01", "And at night?") }, 6, 2},
	} {
		a0, b0 := tripsA.settled(), tripsB.settled()
		spy.since()
		m := tc.from()
		got := w.next(t)
		a1, b1 := tripsA.settled(), tripsB.settled()
		if got.GetSeq() != m.GetSeq() || got.GetBody() != m.GetBody() {
			t.Fatalf("%s: watcher got seq %d %q, want seq %d %q", tc.name, got.GetSeq(), got.GetBody(), m.GetSeq(), m.GetBody())
		}
		t.Logf("%s: %d round trips on the sending instance, %d on the watching one", tc.name, a1-a0, b1-b0)
		if a1-a0 > tc.sending || b1-b0 > tc.watchg {
			t.Errorf("%s: %d round trips to Redis on the sending instance, %d on the watching one; want at most %d and %d",
				tc.name, a1-a0, b1-b0, tc.sending, tc.watchg)
		}
		if topics := spy.since(); !slices.Equal(topics, wantTopics) {
			t.Errorf("%s: published wake-ups %q, want %q", tc.name, topics, wantTopics)
		}
	}
	w.quiet(t)
}

// BenchmarkSendToWatcher sends messages one at a time on one instance
// (pharmacist's replies and caregiver's questions in turn) and waits for
// each on a WatchThread stream on the other, both on one Redis: ns/op is
// the whole trip from SendMessage's start to the watcher. The patient's
// record holds 20 medicines, as in the load test, so that reading it
// costs what it costs there. It reports CPU
// per message of this process (both instances, the clients and the
// watcher) and of Redis, and requests to Redis per message. Compare
// commits back to back:
//
//	go test ./backend/api -run '^$' -bench BenchmarkSendToWatcher -count 6
func BenchmarkSendToWatcher(b *testing.B) {
	base := newEnv(b)
	addr, _ := redistest.StartServer(b)
	var tripsA, tripsB roundTrips
	a := countedInstance(b, base, addr, &tripsA)
	bb := countedInstance(b, base, addr, &tripsB)
	rph := a.pharmacy("ph_1", "rph@one.test")
	pt := a.enroll(rph, "Pat")
	cg := a.caregiver(pt, "son@cg.test", allScopes())
	withPhones(b, a, pt, cg)
	ctx := context.Background()
	for i := range 20 {
		if _, err := a.careClient(rph).AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
			Medication: &mtmv1.MedicationFields{Name: fmt.Sprintf("Medicine %02d 10 mg tablet", i), HowIUseIt: "one tablet twice a day with food",
				WhyIUseIt: "blood pressure", Prescriber: "Dr. Example"}})); err != nil {
			b.Fatal(err)
		}
	}
	cgA, rphA := a.msgClient(cg.token), a.msgClient(rph)
	started, err := cgA.StartThread(ctx, req(&mtmv1.StartThreadRequest{PatientId: pt.id, Subject: "Ibuprofen?", ClientMessageId: "cm_start_0001", Body: "Is this dose right?"}))
	if err != nil {
		b.Fatal(err)
	}
	th := started.Msg.GetThread().GetId()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := bb.msgClient(cg.token).WatchThread(sctx, req(&mtmv1.WatchThreadRequest{ThreadId: th, AfterSeq: 1}))
	if err != nil {
		b.Fatal(err)
	}
	arrived := make(chan int64, 16)
	go func() {
		defer stream.Close()
		for stream.Receive() {
			if m := stream.Msg().GetMessage(); m != nil {
				arrived <- m.GetSeq()
			}
		}
		close(arrived)
	}()
	sendOne := func(i int) {
		c, id := cgA, fmt.Sprintf("cm_q_%08d", i)
		if i%2 == 0 {
			c, id = rphA, fmt.Sprintf("cm_r_%08d", i)
		}
		res, err := c.SendMessage(ctx, req(&mtmv1.SendMessageRequest{ThreadId: th, ClientMessageId: id, Body: "Message " + id}))
		if err != nil {
			b.Fatal(err)
		}
		for seq := range arrived {
			if seq == res.Msg.GetMessage().GetSeq() {
				return
			}
		}
		b.Fatal("the watch stream ended")
	}
	for i := range 20 { // warm up: scripts, caches, connections
		sendOne(-i - 1)
	}
	trips0 := tripsA.N() + tripsB.N()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	cpu0, rcpu0 := storetest.ProcessCPU(b), redistest.CPUTime(b, rc)
	b.ResetTimer()
	for i := range b.N {
		sendOne(i)
	}
	b.StopTimer()
	cpu, rcpu := storetest.ProcessCPU(b)-cpu0, redistest.CPUTime(b, rc)-rcpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(rcpu.Microseconds())/float64(b.N), "redis-cpu-µs/msg")
	b.ReportMetric(float64(tripsA.N()+tripsB.N()-trips0)/float64(b.N), "redis-trips/msg")
}

// TestFirstReadRoundTripsOnRedis counts what a patient's first read on an
// instance costs in requests to Redis: the record with its wrapped data
// key (one request), then the audit event's append script, which seals
// the event under the key the read just opened. Before the read
// remembered that key, the append first fetched it again (3 requests):
// at the morning app open every patient's first read is such a read.
func TestFirstReadRoundTripsOnRedis(t *testing.T) {
	base := newEnv(t)
	addr, _ := redistest.StartServer(t)
	var tripsA, tripsB roundTrips
	a := countedInstance(t, base, addr, &tripsA)
	rph := a.pharmacy("ph_1", "rph@one.test")
	first, pt := a.enroll(rph, "Ann"), a.enroll(rph, "Pat")
	for _, p := range []enrolled{first, pt} {
		if _, err := a.careClient(rph).AddMedication(t.Context(), req(&mtmv1.AddMedicationRequest{PatientId: p.id,
			Medication: &mtmv1.MedicationFields{Name: "Metformin 500 mg tablet", HowIUseIt: "one tablet twice a day with food"}})); err != nil {
			t.Fatal(err)
		}
	}
	read := func(e *env, p enrolled) {
		t.Helper()
		got, err := e.patientClient(p.token).GetMedicationList(t.Context(), req(&mtmv1.GetMedicationListRequest{PatientId: p.id}))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.Msg.GetMedicationList().GetMedications()); n != 1 {
			t.Fatalf("%d medicines, want 1", n)
		}
	}
	// A second instance that has not seen the patient: its record cache
	// and its remembered keys are empty. Its first read of another patient
	// loads the read script into Redis's script cache (once per Redis).
	b := countedInstance(t, base, addr, &tripsB)
	read(b, first)
	for i, want := range []int64{2, 2} {
		b0 := tripsB.settled()
		read(b, pt)
		b1 := tripsB.settled()
		t.Logf("read %d: %d round trips", i, b1-b0)
		if b1-b0 > want {
			t.Errorf("read %d of the patient on a new instance: %d requests to Redis, want at most %d (the record with its key, the audit event)", i, b1-b0, want)
		}
	}
}

// The feed is all an app that holds a cursor reads when it opens: for the
// patient's own app it must cost one read of the log (which also finds
// the patient and the head) and the audit event, with nothing changed
// and with a change to send.
func TestChangesFeedRoundTripsOnRedis(t *testing.T) {
	base := newEnv(t)
	addr, _ := redistest.StartServer(t)
	var trips roundTrips
	e := countedInstance(t, base, addr, &trips)
	rph := e.pharmacy("ph_1", "rph@one.test")
	warm, pt := e.enroll(rph, "Ann"), e.enroll(rph, "Pat")
	feed := func(p enrolled, cursor string) *mtmv1.GetChangesResponse {
		t.Helper()
		got, err := e.patientClient(p.token).GetChanges(t.Context(), req(&mtmv1.GetChangesRequest{PatientId: p.id, Cursor: cursor}))
		if err != nil {
			t.Fatal(err)
		}
		return got.Msg
	}
	// The first call (no cursor) hands out one; the warm-up loads the
	// scripts into Redis's cache.
	feed(warm, feed(warm, "").GetNextCursor())
	cursor := feed(pt, "").GetNextCursor()
	for _, step := range []struct {
		name   string
		change func()
		items  int
	}{
		{"nothing changed", func() {}, 0},
		{"a medicine added", func() {
			if _, err := e.careClient(rph).AddMedication(t.Context(), req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
				Medication: &mtmv1.MedicationFields{Name: "Metformin 500 mg tablet", HowIUseIt: "one tablet twice a day with food"}})); err != nil {
				t.Fatal(err)
			}
		}, 1},
	} {
		step.change()
		n0 := trips.settled()
		got := feed(pt, cursor)
		n := trips.settled() - n0
		if len(got.GetChanges()) != step.items || got.GetReloadRequired() {
			t.Fatalf("%s: %d changes (reload %v), want %d", step.name, len(got.GetChanges()), got.GetReloadRequired(), step.items)
		}
		// With a change the record is read too, to send the item as it is.
		want := int64(2 + step.items)
		t.Logf("%s: %d round trips", step.name, n)
		if n > want {
			t.Errorf("%s: the patient's feed cost %d requests to Redis, want at most %d (the log with the head, the audit event%s)",
				step.name, n, want, map[bool]string{true: ", the record"}[step.items > 0])
		}
		cursor = got.GetNextCursor()
	}
}

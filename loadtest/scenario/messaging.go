package scenario

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/loadtest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// PhaseMessaging is the questions-and-replies phase.
const PhaseMessaging = "questions and replies"

// Conversation is the messaging phase and what it holds open: threads
// started by caregivers, a WatchThread stream per thread on the last
// instance (as the caregiver's phone), a WatchInbox stream per pharmacist on
// the last instance, and the questions and replies sent on the first
// instance at a steady rate. Every message's trip from the start of its
// SendMessage to its arrival on the watching stream is recorded as
// OpSendToWatcher. Call Close after running the phase.
type Conversation struct {
	Phase loadtest.Phase

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	rec     atomic.Pointer[loadtest.Recorder]
	pending sync.Map // body → *sent
	// BeforeAnswer counts messages that reached their watcher before
	// their SendMessage had answered.
	BeforeAnswer atomic.Int64
	// StreamErrors counts watch streams that ended with an error while the
	// phase ran.
	StreamErrors atomic.Int64
}

// Close ends the streams and the pacer.
func (c *Conversation) Close() {
	c.cancel()
	c.wg.Wait()
}

type thread struct {
	id        string
	caregiver int // index in Pop.Caregivers
	pharm     int // index in Pop.Pharmacists
	n         atomic.Int64
}

// Conversation starts `threads` threads (one per caregiver, up to the
// number of caregivers), opens the watch streams and returns the phase,
// which sends `rate` messages per second in total: questions, each
// answered at once by a pharmacist of the patient's pharmacy (half the
// rate each). The phase runs at least rate/10 workers, so that a worker
// has 200 ms for its question and reply before the pacer drops one. Setup
// calls are unmeasured.
func (e *Env) Conversation(ctx context.Context, load loadtest.Load, threads int, rate float64) (*Conversation, error) {
	if rate <= 0 {
		return nil, errors.New("scenario.Conversation: rate must be positive")
	}
	threads = min(threads, len(e.Pop.Caregivers))
	if threads == 0 {
		return nil, errors.New("scenario.Conversation: no caregivers")
	}
	send, watch := 0, e.Servers()-1
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Conversation{cancel: cancel}
	var ths []*thread
	for j := range threads {
		cg := e.Pop.Caregivers[j]
		pharm := -1
		pt := e.patientIndex(cg.PatientID)
		for k, ph := range e.Pop.Pharmacists {
			if ph.PharmacyID == e.Pop.Patients[pt].PharmacyID {
				pharm = k
				break
			}
		}
		if pharm < 0 {
			c.Close()
			return nil, fmt.Errorf("scenario.Conversation: no pharmacist for %s", cg.PatientID)
		}
		_, access := e.caregivers[j].get()
		cctx, ccancel := loadtest.WithDeadline(ctx)
		res, err := e.device(send, j).Msg.StartThread(cctx, loadtest.Authed(&mtmv1.StartThreadRequest{
			PatientId: cg.PatientID, Subject: "Question about my mother's medicines",
			ClientMessageId: fmt.Sprintf("cm_lt_start_%06d", j), Body: "Hello, I help my mother with her medicines.",
		}, access))
		ccancel()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("scenario.Conversation: StartThread: %w", err)
		}
		ths = append(ths, &thread{id: res.Msg.GetThread().GetId(), caregiver: j, pharm: pharm})
	}

	// The caregivers' phones watch their threads on the other instance.
	ready := make(chan error, len(ths))
	for _, th := range ths {
		c.wg.Go(func() { c.watchThread(streamCtx, e, watch, th, ready) })
	}
	for range ths {
		if err := <-ready; err != nil {
			c.Close()
			return nil, fmt.Errorf("scenario.Conversation: WatchThread: %w", err)
		}
	}
	// Pharmacists keep their inbox open there too.
	for k := range e.Pop.Pharmacists {
		c.wg.Go(func() { c.watchInbox(streamCtx, e, watch, k) })
	}

	load.Concurrency = max(load.Concurrency, int(math.Ceil(rate/10)))
	// The pacer releases one question (and its reply) every 2/rate seconds.
	ticks := make(chan struct{})
	c.wg.Go(func() {
		t := time.NewTicker(time.Duration(2 * float64(time.Second) / rate))
		defer t.Stop()
		for {
			select {
			case <-streamCtx.Done():
				return
			case <-t.C:
				select {
				case ticks <- struct{}{}:
				default: // every worker busy: the question is dropped, not queued
				}
			}
		}
	})
	var next atomic.Uint64
	c.Phase = loadtest.Phase{Name: PhaseMessaging, Baseline: PhaseBaseline, Paced: true, Load: load,
		// Only SendMessage is a call: server CPU per call is per message sent.
		Derived: []string{OpSendToWatcher, OpAnswerToWatcher}, Iterate: func(ctx context.Context, _ int) error {
			c.rec.Store(loadtest.RecorderFrom(ctx))
			select {
			case <-ticks:
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
				return nil // let the runner see the end of the phase
			}
			th := ths[int(next.Add(1)-1)%len(ths)]
			n := th.n.Add(1)
			_, cgAccess := e.caregivers[th.caregiver].get()
			if err := c.send(ctx, e, send, th.caregiver, th.id, cgAccess, fmt.Sprintf("cm_lt_q_%s_%d", th.id, n),
				fmt.Sprintf("Question %d on %s: can she take ibuprofen for her knee with her blood thinner?", n, th.id)); err != nil {
				return err
			}
			_, rphAccess := e.pharmacists[th.pharm].get()
			return c.send(ctx, e, send, th.pharm, th.id, rphAccess, fmt.Sprintf("cm_lt_r_%s_%d", th.id, n),
				fmt.Sprintf("Reply %d on %s: please use acetaminophen instead; ibuprofen raises the bleeding risk.", n, th.id))
		}}
	return c, nil
}

// sent is a message on its way: when its SendMessage started and, once it
// answered, when (UnixNano; 0 before).
type sent struct {
	start    time.Time
	answered atomic.Int64
}

func (c *Conversation) send(ctx context.Context, e *Env, server, dev int, threadID, access, clientID, body string) error {
	m := &sent{start: time.Now()}
	c.pending.Store(body, m)
	ctx, cancel := loadtest.WithDeadline(ctx)
	defer cancel()
	_, err := e.device(server, dev).Msg.SendMessage(ctx, loadtest.Authed(&mtmv1.SendMessageRequest{
		ThreadId: threadID, ClientMessageId: clientID, Body: body,
	}, access))
	if err != nil {
		c.pending.Delete(body)
	}
	m.answered.Store(time.Now().UnixNano())
	return err
}

// arrived records a watched message's trip: from its send's start
// (OpSendToWatcher) and, when its SendMessage had answered already, from
// that answer (OpAnswerToWatcher: the wake-up path alone, Redis pub/sub
// to the other instance and its re-read); earlier arrivals are counted.
func (c *Conversation) arrived(body string) {
	v, ok := c.pending.LoadAndDelete(body)
	if !ok {
		return
	}
	m, now := v.(*sent), time.Now()
	rec := c.rec.Load()
	if rec == nil {
		return
	}
	rec.Observe(OpSendToWatcher, now.Sub(m.start), nil)
	if at := m.answered.Load(); at != 0 {
		rec.Observe(OpAnswerToWatcher, now.Sub(time.Unix(0, at)), nil)
	} else {
		c.BeforeAnswer.Add(1)
	}
}

// watchThread follows one thread as its caregiver and records each
// awaited message's arrival. It reports on ready once the stream is open
// (first response: the backlog or a heartbeat) or failed.
func (c *Conversation) watchThread(ctx context.Context, e *Env, server int, th *thread, ready chan<- error) {
	_, access := e.caregivers[th.caregiver].get()
	var after int64
	first := true
	for ctx.Err() == nil {
		stream, err := e.device(server, th.caregiver).Msg.WatchThread(ctx, loadtest.Authed(&mtmv1.WatchThreadRequest{ThreadId: th.id, AfterSeq: after}, access))
		if err != nil {
			if first {
				ready <- err
				return
			}
			c.StreamErrors.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if first {
			// The thread's first message is the backlog the stream opens with.
			if !stream.Receive() {
				ready <- fmt.Errorf("stream ended at once: %w", stream.Err())
				stream.Close()
				return
			}
			first = false
			ready <- nil
			after = max(after, stream.Msg().GetMessage().GetSeq())
		}
		for stream.Receive() {
			m := stream.Msg().GetMessage()
			if m == nil {
				continue // heartbeat
			}
			after = max(after, m.GetSeq())
			c.arrived(m.GetBody())
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil && connect.CodeOf(err) != connect.CodeCanceled {
			c.StreamErrors.Add(1)
		}
		stream.Close()
	}
}

// watchInbox keeps pharmacist k's inbox stream open, reconnecting as an
// app would.
func (c *Conversation) watchInbox(ctx context.Context, e *Env, server, k int) {
	_, access := e.pharmacists[k].get()
	for ctx.Err() == nil {
		stream, err := e.device(server, k).Msg.WatchInbox(ctx, loadtest.Authed(&mtmv1.WatchInboxRequest{}, access))
		if err != nil {
			c.StreamErrors.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for stream.Receive() {
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			c.StreamErrors.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
		stream.Close()
	}
}

// patientIndex returns the index of the patient with this id (-1 if none).
func (e *Env) patientIndex(id string) int {
	for i, p := range e.Pop.Patients {
		if p.ID == id {
			return i
		}
	}
	return -1
}

// Undelivered is the number of messages sent successfully whose arrival no
// watcher has seen yet.
func (c *Conversation) Undelivered() int {
	n := 0
	c.pending.Range(func(_, _ any) bool { n++; return true })
	return n
}

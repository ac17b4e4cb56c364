package api

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/audit"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/wake"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// Messaging: a thread is about one patient and routed to that patient's
// pharmacy. Who may touch a thread follows who may touch its patient, on
// every call (a revoked grant stops a caregiver at once, streams included):
// the patient, caregivers whose grant carries the message scope, and the
// pharmacists of the patient's pharmacy. A thread the caller may not see
// and one that does not exist give the same not_found answer.
//
// States: open (waiting for the pharmacy) → claimed (a pharmacist took it)
// → answered (a pharmacist replied last) → closed. A pharmacist's reply
// answers the thread from any state and claims it for them if nobody had.
// When the patient side writes, an answered thread goes back to claimed
// (to the pharmacist who holds it) or open, and a closed one reopens as
// open and unclaimed.

// Waker carries wake-ups between the handlers that change threads and the
// streams that watch them (package wake implements it in process and over
// Redis). A wake-up carries no data: streams re-read the store.
type Waker interface {
	// Subscribe registers a waiter on topic; cancel unregisters it.
	Subscribe(topic string) (wakeups <-chan struct{}, cancel func())
	// Notify wakes the topics' waiters in every process, best effort
	// (wake.Redis publishes several topics in one round trip).
	Notify(ctx context.Context, topics ...string) error
}

// ReplyNotifier pushes "your pharmacist replied" to the patient side. The
// push must carry no message text.
type ReplyNotifier interface {
	// PharmacistReplied is called once per stored pharmacist reply with
	// the patient's record and the people to notify (patient or account
	// ids: the thread's starter and the patient). The record is the one
	// the reply's own access check read, during the call that stored the
	// reply: it holds every grant revocation acknowledged before that
	// call began, so the notifier decides from it (who may still read the
	// thread, the patient's devices and language) without reading it
	// again.
	PharmacistReplied(ctx context.Context, pt store.Patient, threadID string, recipients []string) error
}

// Defaults of the messaging settings in Config.
const (
	DefaultStreamHeartbeat = 15 * time.Second
	DefaultEscalateAfter   = 4 * time.Hour
	// maxBodyRunes mirrors the proto's limit on a message body.
	maxBodyRunes = 4000
)

// Wake-up topics: one per thread (WatchThread) and one per pharmacy's
// inbox (WatchInbox). Nothing else subscribes, so nothing else is
// published: on Redis every published wake-up reaches every mtmd.
func threadTopic(id string) string      { return "thread:" + id }
func inboxTopic(pharmacy string) string { return "inbox:" + pharmacy }

var (
	errThreadNotFound = connect.NewError(connect.CodeNotFound, errors.New("thread not found"))
	errThreadClosed   = connect.NewError(connect.CodeFailedPrecondition, errors.New("the thread is closed"))
	errClaimedByOther = connect.NewError(connect.CodeFailedPrecondition, errors.New("another pharmacist has claimed the thread"))
	errReusedClientID = connect.NewError(connect.CodeAlreadyExists, errors.New("client_message_id was already used for a different message"))
)

// MessagingService implements mtm.v1.MessagingService.
type MessagingService struct {
	mtmv1connect.UnimplementedMessagingServiceHandler
	cfg           Config
	wake          Waker
	heartbeat     time.Duration
	escalateAfter time.Duration
	firstResponse prometheus.Histogram
	streams       *streamSlots
	threads       threadPlaces
}

var _ mtmv1connect.MessagingServiceHandler = (*MessagingService)(nil)

// NewMessagingService returns the MessagingService or an error naming every
// missing dependency. Without Config.Wake it wakes streams in this process
// only, which is right for the embedded store; several mtmd on Redis need a
// wake.Redis. Config.Metrics, when set, receives
// mtm_messaging_first_response_seconds.
func NewMessagingService(c Config) (*MessagingService, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("api.NewMessagingService: %w", err)
	}
	s := &MessagingService{cfg: c, wake: c.Wake, heartbeat: c.StreamHeartbeat, escalateAfter: c.EscalateAfter,
		streams: newStreamSlots(c.MaxStreamsPerPrincipal, c.MaxStreams)}
	if s.wake == nil {
		s.wake = wake.NewHub()
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultStreamHeartbeat
	}
	if s.escalateAfter <= 0 {
		s.escalateAfter = DefaultEscalateAfter
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mtm_messaging_first_response_seconds",
		Help:    "Time from a thread's first message to the first pharmacist reply.",
		Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 72 * 3600},
	})
	s.firstResponse = h
	if c.Metrics != nil {
		if err := c.Metrics.Register(h); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("api.NewMessagingService: %w", err)
			}
			if existing, ok := are.ExistingCollector.(prometheus.Histogram); ok {
				s.firstResponse = existing
			}
		}
	}
	return s, nil
}

// threadIDFor derives a thread's id from its idempotency key, so that a
// retried StartThread finds the thread its first attempt created.
func threadIDFor(patientID, authorID, clientMessageID string) string {
	sum := sha256.Sum256([]byte(patientID + "\x00" + authorID + "\x00" + clientMessageID))
	return "th_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// checkBody refuses bodies that are blank or not plain text.
func checkBody(body string) error {
	if strings.TrimSpace(body) == "" {
		return invalidField("body", "must not be blank")
	}
	for _, r := range body {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return invalidField("body", "must be plain text (no control characters)")
		}
	}
	return nil
}

// caller is who is acting on a thread and what the thread shows them.
type caller struct {
	p       auth.Principal
	patient store.Patient
	name    string
}

// forPatient checks that the caller may use messaging for this patient:
// the patient, a caregiver with the message scope, or staff of the
// patient's pharmacy. The caller's patient is the store's shared record
// (Config.view): messaging only reads it.
func (s *MessagingService) forPatient(ctx context.Context, patientID string) (caller, error) {
	p, err := principal(ctx)
	if err != nil {
		return caller{}, err
	}
	may := func(pt store.Patient) bool { return mayCareFor(p, pt) }
	if !p.Role.IsStaff() {
		if _, may, err = s.cfg.patientSideAccess(ctx, store.ScopeMessage); err != nil {
			return caller{}, err
		}
	}
	pt, err := s.cfg.view(ctx, patientID, may)
	if err != nil {
		return caller{}, err
	}
	return caller{p: p, patient: pt}, nil
}

// threadPlace is what never changes about a thread: its id, its patient
// and the pharmacy it is routed to (store.Messages refuses updates that
// change them). Who may use the thread follows from it and the patient's
// current record.
type threadPlace struct{ id, patientID, pharmacyID string }

func placeOf(th store.Thread) threadPlace { return threadPlace{th.ID, th.PatientID, th.PharmacyID} }

// threadPlaces remembers the places of the threads this process has read
// or started, so that SendMessage checks access without reading the
// thread first (the store reads it anyway to append). An entry never goes
// stale; a thread deleted since (with its patient's erasure) fails the
// access check, as its patient no longer exists. Bounded: emptied when it
// reaches maxThreadPlaces entries.
type threadPlaces struct {
	mu sync.Mutex
	m  map[string]threadPlace
}

// maxThreadPlaces bounds threadPlaces (about 150 bytes an entry).
const maxThreadPlaces = 1 << 16

func (t *threadPlaces) get(id string) (threadPlace, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pl, ok := t.m[id]
	return pl, ok
}

func (t *threadPlaces) put(pl threadPlace) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil || len(t.m) >= maxThreadPlaces {
		t.m = make(map[string]threadPlace)
	}
	t.m[pl.id] = pl
}

// forThread loads a thread the caller may use; staffOnly refuses the
// patient side first.
func (s *MessagingService) forThread(ctx context.Context, threadID string, staffOnly bool) (caller, store.Thread, error) {
	if err := threadRole(ctx, staffOnly); err != nil {
		return caller{}, store.Thread{}, err
	}
	th, err := s.cfg.Store.GetThread(ctx, threadID)
	if errors.Is(err, store.ErrNotFound) {
		return caller{}, store.Thread{}, errThreadNotFound
	}
	if err != nil {
		return caller{}, store.Thread{}, err
	}
	s.threads.put(placeOf(th))
	c, err := s.mayUse(ctx, placeOf(th))
	if err != nil {
		return caller{}, store.Thread{}, err
	}
	return c, th, nil
}

// forKnownThread is forThread for a thread whose place the caller already
// has (a stream re-checking access on a wake-up, a send to a thread this
// process has seen): it checks access without reading the thread.
func (s *MessagingService) forKnownThread(ctx context.Context, pl threadPlace, staffOnly bool) (caller, error) {
	if err := threadRole(ctx, staffOnly); err != nil {
		return caller{}, err
	}
	return s.mayUse(ctx, pl)
}

// threadRole refuses callers whose role may not use threads this way:
// staffOnly refuses the patient side.
func threadRole(ctx context.Context, staffOnly bool) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if staffOnly {
		_, err = staff(ctx)
	} else if !p.Role.IsStaff() {
		_, err = patientSide(ctx)
	}
	return err
}

// mayUse checks, against the current record of the thread's patient, that
// the caller may use the thread at pl; a thread they may not use is
// not_found, as one that does not exist.
func (s *MessagingService) mayUse(ctx context.Context, pl threadPlace) (caller, error) {
	c, err := s.forPatient(ctx, pl.patientID)
	if errors.Is(err, errPatientNotFound) {
		return caller{}, errThreadNotFound
	}
	if err != nil {
		return caller{}, err
	}
	if c.p.Role.IsStaff() && pl.pharmacyID != c.p.PharmacyID {
		return caller{}, errThreadNotFound
	}
	audit.Touch(ctx, pl.patientID, pl.id)
	return c, nil
}

// accountName starts reading the display name of account id and returns
// a function that waits for it.
func (s *MessagingService) accountName(ctx context.Context, id string) func() (string, error) {
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		a, err := s.cfg.Store.GetAccount(ctx, id)
		done <- result{a.DisplayName, err}
	}()
	return func() (string, error) {
		r := <-done
		return r.name, r.err
	}
}

// authorName is how the caller signs a message.
func (s *MessagingService) authorName(ctx context.Context, c caller) (string, error) {
	switch c.p.Role {
	case store.RolePatient:
		return strings.TrimSpace(c.patient.GivenName + " " + c.patient.FamilyName), nil
	case store.RoleCaregiver:
		for _, g := range c.patient.Grants {
			if g.CaregiverID == c.p.Subject && g.RevokedAt.IsZero() {
				return g.CaregiverName, nil
			}
		}
		return "", nil
	default:
		a, err := s.cfg.Store.GetAccount(ctx, c.p.Subject)
		if err != nil {
			return "", err
		}
		return a.DisplayName, nil
	}
}

func (s *MessagingService) threadToProto(t store.Thread, viewer string) *mtmv1.Thread {
	state := map[store.ThreadState]mtmv1.ThreadState{
		store.ThreadOpen: mtmv1.ThreadState_THREAD_STATE_OPEN, store.ThreadClaimed: mtmv1.ThreadState_THREAD_STATE_CLAIMED,
		store.ThreadAnswered: mtmv1.ThreadState_THREAD_STATE_ANSWERED, store.ThreadClosed: mtmv1.ThreadState_THREAD_STATE_CLOSED,
	}[t.State]
	return &mtmv1.Thread{
		Id: t.ID, PatientId: t.PatientID, Subject: t.Subject, State: state, ClaimedBy: t.ClaimedBy,
		UnreadCount: int32(min(t.Unread(viewer), 1<<31-1)),
		Escalated:   t.State == store.ThreadOpen && s.cfg.Now().Sub(t.StateSince) >= s.escalateAfter,
		CreatedAt:   ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
		StartedByCaregiver: t.StartedBy != "" && t.StartedBy != t.PatientID,
	}
}

func messageToProto(m store.Message) *mtmv1.Message {
	return &mtmv1.Message{Id: m.ThreadID + "-" + strconv.FormatInt(m.Seq, 10), ThreadId: m.ThreadID, Seq: m.Seq,
		AuthorId: m.AuthorID, AuthorName: m.AuthorName, Body: m.Body, SentAt: ts(m.SentAt)}
}

// notify wakes the watchers of a changed thread; failures only delay them.
func (s *MessagingService) notify(ctx context.Context, t store.Thread, messages bool) {
	topics := []string{inboxTopic(t.PharmacyID)}
	if messages {
		topics = append(topics, threadTopic(t.ID))
	}
	if err := s.wake.Notify(ctx, topics...); err != nil {
		s.cfg.Logger.WarnContext(ctx, "wake-up not sent", slog.String("error", err.Error()))
	}
}

// StartThread implements mtm.v1.MessagingService.StartThread for the
// patient and caregivers with the message scope. A retry with the same
// client_message_id returns the thread and message the first call created.
func (s *MessagingService) StartThread(ctx context.Context, req *connect.Request[mtmv1.StartThreadRequest]) (*connect.Response[mtmv1.StartThreadResponse], error) {
	m := req.Msg
	if _, err := patientSide(ctx); err != nil {
		return nil, err
	}
	c, err := s.forPatient(ctx, m.GetPatientId())
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(m.GetSubject()) == "" {
		return nil, invalidField("subject", "must not be blank")
	}
	if err := checkBody(m.GetBody()); err != nil {
		return nil, err
	}
	name, err := s.authorName(ctx, c)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	th := store.Thread{
		ID: threadIDFor(c.patient.ID, c.p.Subject, m.GetClientMessageId()), PatientID: c.patient.ID, PharmacyID: c.patient.PharmacyID,
		Subject: m.GetSubject(), StartedBy: c.p.Subject, State: store.ThreadOpen, StateSince: now,
		ReadThrough: map[string]int64{c.p.Subject: 1}, CreatedAt: now, UpdatedAt: now,
	}
	first := store.Message{ClientMessageID: m.GetClientMessageId(), AuthorID: c.p.Subject, AuthorRole: c.p.Role, AuthorName: name,
		Body: m.GetBody(), SentAt: now}
	th, msg, created, err := s.cfg.Store.CreateThread(ctx, th, first)
	if err != nil {
		return nil, err
	}
	s.threads.put(placeOf(th))
	audit.Touch(ctx, c.patient.ID, th.ID)
	if !created && (msg.Body != m.GetBody() || th.Subject != m.GetSubject()) {
		return nil, errReusedClientID
	}
	if created {
		s.notify(ctx, th, true)
	}
	return connect.NewResponse(&mtmv1.StartThreadResponse{Thread: s.threadToProto(th, c.p.Subject), Message: messageToProto(msg)}), nil
}

// SendMessage implements mtm.v1.MessagingService.SendMessage for the
// patient side and for pharmacists of the patient's pharmacy (a reply). A
// retry with the same client_message_id returns the original message.
func (s *MessagingService) SendMessage(ctx context.Context, req *connect.Request[mtmv1.SendMessageRequest]) (*connect.Response[mtmv1.SendMessageResponse], error) {
	m := req.Msg
	// A pharmacist signs with their account's name: read it while access
	// is checked.
	var staffName func() (string, error)
	if p, err := principal(ctx); err == nil && p.Role.IsStaff() {
		staffName = s.accountName(ctx, p.Subject)
	}
	var c caller
	var err error
	if pl, ok := s.threads.get(m.GetThreadId()); ok {
		c, err = s.forKnownThread(ctx, pl, false)
	} else {
		c, _, err = s.forThread(ctx, m.GetThreadId(), false)
	}
	if err != nil {
		return nil, err
	}
	if err := checkBody(m.GetBody()); err != nil {
		return nil, err
	}
	var name string
	if staffName != nil {
		name, err = staffName()
	} else {
		name, err = s.authorName(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	staffReply := c.p.Role.IsStaff()
	firstReply := false
	msg := store.Message{ClientMessageID: m.GetClientMessageId(), AuthorID: c.p.Subject, AuthorRole: c.p.Role, AuthorName: name,
		Body: m.GetBody(), SentAt: now}
	th, stored, created, err := s.cfg.Store.AppendMessage(ctx, m.GetThreadId(), msg, func(t store.Thread) (store.Thread, error) {
		firstReply = false
		if t.ReadThrough == nil {
			t.ReadThrough = map[string]int64{}
		}
		t.ReadThrough[c.p.Subject] = t.LastSeq + 1
		t.UpdatedAt = now
		if staffReply {
			if t.ClaimedBy == "" {
				t.ClaimedBy = c.p.Subject
			}
			if t.FirstResponseAt.IsZero() {
				t.FirstResponseAt, firstReply = now, true
			}
			t.State, t.StateSince = store.ThreadAnswered, now
			return t, nil
		}
		switch t.State {
		case store.ThreadClosed:
			t.State, t.StateSince, t.ClaimedBy = store.ThreadOpen, now, ""
		case store.ThreadAnswered:
			t.State, t.StateSince = store.ThreadOpen, now
			if t.ClaimedBy != "" {
				t.State = store.ThreadClaimed
			}
		}
		return t, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errThreadNotFound
	}
	if err != nil {
		return nil, err
	}
	if !created {
		if stored.Body != m.GetBody() {
			return nil, errReusedClientID
		}
		return connect.NewResponse(&mtmv1.SendMessageResponse{Message: messageToProto(stored)}), nil
	}
	s.notify(ctx, th, true)
	if staffReply {
		if firstReply {
			s.firstResponse.Observe(now.Sub(th.CreatedAt).Seconds())
		}
		s.pushReply(ctx, th, c.patient)
	}
	return connect.NewResponse(&mtmv1.SendMessageResponse{Message: messageToProto(stored)}), nil
}

// pushReply tells the asker (and the patient, when a caregiver asked) that
// the pharmacist replied; pt is the record of th's patient that admitted
// the reply. The message is stored already, so a failed push is logged,
// not returned.
func (s *MessagingService) pushReply(ctx context.Context, th store.Thread, pt store.Patient) {
	if s.cfg.ReplyNotifier == nil {
		return
	}
	recipients := []string{th.StartedBy}
	if th.StartedBy != th.PatientID {
		recipients = append(recipients, th.PatientID)
	}
	if err := s.cfg.ReplyNotifier.PharmacistReplied(ctx, pt, th.ID, recipients); err != nil {
		s.cfg.Logger.WarnContext(ctx, "reply push failed", slog.String("error", err.Error()))
	}
}

// checkPageToken refuses a token that no listing handed out.
func checkPageToken(token string) error {
	if token == "" {
		return nil
	}
	digits, _, ok := strings.Cut(token, ":")
	if !ok || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" {
		return invalidField("page_token", "not a token from an earlier page")
	}
	return nil
}

// ListThreads implements mtm.v1.MessagingService.ListThreads: a patient's
// threads, newest first, with the caller's unread counts.
func (s *MessagingService) ListThreads(ctx context.Context, req *connect.Request[mtmv1.ListThreadsRequest]) (*connect.Response[mtmv1.ListThreadsResponse], error) {
	m := req.Msg
	c, err := s.forPatient(ctx, m.GetPatientId())
	if err != nil {
		return nil, err
	}
	if err := checkPageToken(m.GetPageToken()); err != nil {
		return nil, err
	}
	size := int(m.GetPageSize())
	if size == 0 {
		size = 20
	}
	threads, err := s.cfg.Store.ListPatientThreads(ctx, c.patient.ID, m.GetPageToken(), size)
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListThreadsResponse{}
	for _, t := range threads {
		if c.p.Role.IsStaff() && t.PharmacyID != c.p.PharmacyID {
			continue
		}
		out.Threads = append(out.Threads, s.threadToProto(t, c.p.Subject))
	}
	if len(threads) == size {
		last := threads[len(threads)-1]
		out.NextPageToken = store.ThreadIndexKey(last.CreatedAt, last.ID)
	}
	return connect.NewResponse(out), nil
}

// ListMessages implements mtm.v1.MessagingService.ListMessages: messages
// after a seq, oldest first.
func (s *MessagingService) ListMessages(ctx context.Context, req *connect.Request[mtmv1.ListMessagesRequest]) (*connect.Response[mtmv1.ListMessagesResponse], error) {
	m := req.Msg
	if _, _, err := s.forThread(ctx, m.GetThreadId(), false); err != nil {
		return nil, err
	}
	size := int(m.GetPageSize())
	if size == 0 {
		size = 100
	}
	msgs, err := s.cfg.Store.ListMessages(ctx, m.GetThreadId(), m.GetAfterSeq(), size)
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListMessagesResponse{}
	for _, msg := range msgs {
		out.Messages = append(out.Messages, messageToProto(msg))
	}
	return connect.NewResponse(out), nil
}

// MarkRead implements mtm.v1.MessagingService.MarkRead: the caller has read
// the thread through a seq (a lower seq than already recorded changes
// nothing).
func (s *MessagingService) MarkRead(ctx context.Context, req *connect.Request[mtmv1.MarkReadRequest]) (*connect.Response[mtmv1.MarkReadResponse], error) {
	m := req.Msg
	c, th, err := s.forThread(ctx, m.GetThreadId(), false)
	if err != nil {
		return nil, err
	}
	if m.GetReadThroughSeq() > th.LastSeq {
		return nil, invalidField("read_through_seq", fmt.Sprintf("beyond the thread's last message (%d)", th.LastSeq))
	}
	if th.ReadThrough[c.p.Subject] < m.GetReadThroughSeq() {
		th, err = s.cfg.Store.UpdateThread(ctx, th.ID, func(t store.Thread) (store.Thread, error) {
			if t.ReadThrough == nil {
				t.ReadThrough = map[string]int64{}
			}
			t.ReadThrough[c.p.Subject] = max(t.ReadThrough[c.p.Subject], m.GetReadThroughSeq())
			return t, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&mtmv1.MarkReadResponse{UnreadCount: int32(min(th.Unread(c.p.Subject), 1<<31-1))}), nil
}

// WatchThread implements mtm.v1.MessagingService.WatchThread: a heartbeat
// (an empty response) at once, then every message after after_seq, in
// order, exactly once, then new ones as they arrive, with heartbeats. Access is checked again on every
// wake-up and heartbeat: a revoked caregiver's stream ends with not_found.
// A stream past the caps on open streams (Config.MaxStreamsPerPrincipal,
// Config.MaxStreams) is refused with resource_exhausted.
func (s *MessagingService) WatchThread(ctx context.Context, req *connect.Request[mtmv1.WatchThreadRequest], stream *connect.ServerStream[mtmv1.WatchThreadResponse]) error {
	m := req.Msg
	release, err := s.streams.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	_, th, err := s.forThread(ctx, m.GetThreadId(), false)
	if err != nil {
		return err
	}
	pl := placeOf(th)
	wakeups, cancel := s.wake.Subscribe(threadTopic(m.GetThreadId()))
	defer cancel()
	cursor := m.GetAfterSeq()
	type page struct {
		msgs []store.Message
		err  error
	}
	// read starts reading the page of messages after the cursor.
	read := func() <-chan page {
		done := make(chan page, 1)
		go func(after int64) {
			msgs, err := s.cfg.Store.ListMessages(ctx, m.GetThreadId(), after, 100)
			done <- page{msgs, err}
		}(cursor)
		return done
	}
	// send sends the messages of the page being read and of the pages
	// after it, in order.
	send := func(next <-chan page) error {
		for {
			p := <-next
			if p.err != nil {
				return p.err
			}
			for _, msg := range p.msgs {
				if err := stream.Send(&mtmv1.WatchThreadResponse{Message: messageToProto(msg)}); err != nil {
					return err
				}
				cursor = msg.Seq
			}
			if len(p.msgs) < 100 {
				return nil
			}
			next = read()
		}
	}
	return s.watch(ctx, wakeups, func(heartbeat bool) error {
		// Access is checked again against the patient's current record
		// (the thread's place never changes) while the new messages are
		// read; none is sent before the check has passed.
		next := read()
		if _, err := s.forKnownThread(ctx, pl, false); err != nil {
			return err
		}
		if heartbeat {
			if err := stream.Send(&mtmv1.WatchThreadResponse{}); err != nil {
				return err
			}
		}
		return send(next)
	})
}

// watch runs step at once and then on every wake-up and every heartbeat
// (heartbeat true), until ctx ends (nil), step fails, or the access token
// that opened the stream expires (unauthenticated, reason TOKEN_EXPIRED:
// the client refreshes and resumes from its cursor). The first step
// counts as a heartbeat: it sends the response headers at once, so a
// client does not wait for the first message to learn the stream is up.
func (s *MessagingService) watch(ctx context.Context, wakeups <-chan struct{}, step func(heartbeat bool) error) error {
	if err := step(true); err != nil {
		return err
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	var expired <-chan time.Time
	if exp, ok := auth.AccessExpiryFrom(ctx); ok {
		t := time.NewTimer(exp.Sub(s.cfg.Now()))
		defer t.Stop()
		expired = t.C
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-expired:
			return errTokenExpired
		case <-wakeups:
			err = step(false)
		case <-tick.C:
			err = step(true)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// ListInbox implements mtm.v1.MessagingService.ListInbox: the caller's
// pharmacy's threads in one state (open when unspecified), oldest first,
// with unclaimed threads waiting longer than the escalation age flagged.
func (s *MessagingService) ListInbox(ctx context.Context, req *connect.Request[mtmv1.ListInboxRequest]) (*connect.Response[mtmv1.ListInboxResponse], error) {
	m := req.Msg
	p, err := staff(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkPageToken(m.GetPageToken()); err != nil {
		return nil, err
	}
	state := map[mtmv1.ThreadState]store.ThreadState{
		mtmv1.ThreadState_THREAD_STATE_UNSPECIFIED: store.ThreadOpen, mtmv1.ThreadState_THREAD_STATE_OPEN: store.ThreadOpen,
		mtmv1.ThreadState_THREAD_STATE_CLAIMED: store.ThreadClaimed, mtmv1.ThreadState_THREAD_STATE_ANSWERED: store.ThreadAnswered,
		mtmv1.ThreadState_THREAD_STATE_CLOSED: store.ThreadClosed,
	}[m.GetState()]
	size := int(m.GetPageSize())
	if size == 0 {
		size = 50
	}
	threads, err := s.cfg.Store.ListInbox(ctx, p.PharmacyID, state, m.GetPageToken(), size)
	if err != nil {
		return nil, err
	}
	out := &mtmv1.ListInboxResponse{}
	names := map[string]string{} // one read per patient of the page
	for _, t := range threads {
		pt := s.threadToProto(t, p.Subject)
		name, ok := names[t.PatientID]
		if !ok {
			rec, err := s.cfg.Store.GetPatient(ctx, t.PatientID)
			switch {
			case err == nil && rec.PharmacyID == p.PharmacyID:
				name = strings.TrimSpace(rec.GivenName + " " + rec.FamilyName)
			case err != nil && !errors.Is(err, store.ErrNotFound):
				return nil, err
			}
			names[t.PatientID] = name
		}
		pt.PatientName = name
		out.Threads = append(out.Threads, pt)
	}
	if len(threads) == size {
		last := threads[len(threads)-1]
		out.NextPageToken = store.ThreadIndexKey(last.StateSince, last.ID)
	}
	return connect.NewResponse(out), nil
}

// ClaimThread implements mtm.v1.MessagingService.ClaimThread: an open
// thread becomes the caller's. Claiming one's own thread again changes
// nothing; a thread another pharmacist holds, or a closed one, is refused
// with failed_precondition.
func (s *MessagingService) ClaimThread(ctx context.Context, req *connect.Request[mtmv1.ClaimThreadRequest]) (*connect.Response[mtmv1.ClaimThreadResponse], error) {
	c, th, err := s.forThread(ctx, req.Msg.GetThreadId(), true)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if th.ClaimedBy != c.p.Subject || th.State == store.ThreadClosed {
		th, err = s.cfg.Store.UpdateThread(ctx, th.ID, func(t store.Thread) (store.Thread, error) {
			switch {
			case t.State == store.ThreadClosed:
				return t, errThreadClosed
			case t.ClaimedBy != "" && t.ClaimedBy != c.p.Subject:
				return t, errClaimedByOther
			}
			t.ClaimedBy, t.UpdatedAt = c.p.Subject, now
			if t.State == store.ThreadOpen {
				t.State, t.StateSince = store.ThreadClaimed, now
			}
			return t, nil
		})
		if err != nil {
			return nil, err
		}
		s.notify(ctx, th, false)
	}
	return connect.NewResponse(&mtmv1.ClaimThreadResponse{Thread: s.threadToProto(th, c.p.Subject)}), nil
}

// CloseThread implements mtm.v1.MessagingService.CloseThread for
// pharmacists of the patient's pharmacy. Closing a closed thread changes
// nothing.
func (s *MessagingService) CloseThread(ctx context.Context, req *connect.Request[mtmv1.CloseThreadRequest]) (*connect.Response[mtmv1.CloseThreadResponse], error) {
	c, th, err := s.forThread(ctx, req.Msg.GetThreadId(), true)
	if err != nil {
		return nil, err
	}
	if th.State != store.ThreadClosed {
		now := s.cfg.Now()
		th, err = s.cfg.Store.UpdateThread(ctx, th.ID, func(t store.Thread) (store.Thread, error) {
			if t.State != store.ThreadClosed {
				t.State, t.StateSince, t.UpdatedAt = store.ThreadClosed, now, now
			}
			return t, nil
		})
		if err != nil {
			return nil, err
		}
		s.notify(ctx, th, false)
	}
	return connect.NewResponse(&mtmv1.CloseThreadResponse{Thread: s.threadToProto(th, c.p.Subject)}), nil
}

// WatchInbox implements mtm.v1.MessagingService.WatchInbox: every thread of
// the caller's pharmacy that changes after the cursor, oldest change
// first, each with the cursor to resume after it. An empty cursor starts
// from now; a heartbeat carries the current cursor and no thread.
func (s *MessagingService) WatchInbox(ctx context.Context, req *connect.Request[mtmv1.WatchInboxRequest], stream *connect.ServerStream[mtmv1.WatchInboxResponse]) error {
	p, err := staff(ctx)
	if err != nil {
		return err
	}
	release, err := s.streams.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	var cursor int64
	if raw := req.Msg.GetCursor(); raw != "" {
		if cursor, err = strconv.ParseInt(raw, 10, 64); err != nil || cursor < 0 {
			return invalidField("cursor", "not a cursor from this inbox")
		}
	} else if cursor, err = s.cfg.Store.InboxHead(ctx, p.PharmacyID); err != nil {
		return err
	}
	wakeups, cancel := s.wake.Subscribe(inboxTopic(p.PharmacyID))
	defer cancel()
	return s.watch(ctx, wakeups, func(heartbeat bool) error {
		if heartbeat {
			if err := stream.Send(&mtmv1.WatchInboxResponse{Cursor: strconv.FormatInt(cursor, 10)}); err != nil {
				return err
			}
		}
		for {
			changes, err := s.cfg.Store.InboxChanges(ctx, p.PharmacyID, cursor, 100)
			if err != nil {
				return err
			}
			for _, ch := range changes {
				if err := stream.Send(&mtmv1.WatchInboxResponse{Thread: s.threadToProto(ch.Thread, p.Subject), Cursor: strconv.FormatInt(ch.Cursor, 10)}); err != nil {
					return err
				}
				cursor = ch.Cursor
			}
			if len(changes) < 100 {
				return nil
			}
		}
	})
}

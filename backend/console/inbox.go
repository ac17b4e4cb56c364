package console

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// inboxData is the inbox page: threads grouped as a pharmacist works them.
type inboxData struct {
	Groups []inboxGroup
}

// inboxGroup is one section of the inbox.
type inboxGroup struct {
	ID, Title string
	Rows      []inboxRow
}

// inboxRow is one thread as the inbox lists it.
type inboxRow struct {
	Thread      *mtmv1.Thread
	PatientName string
	// Asker: "Patient" or "Caregiver" (who started the thread).
	Asker string
	Age   string // how long ago the thread started, e.g. "3 h"
	Link  string
}

func (c *Console) inboxRoutes() {
	c.Page("GET /console/inbox", c.inbox)
	c.Page("GET /console/inbox/events", c.inboxEvents)
}

func (c *Console) inbox(rq *Request) error {
	d, err := c.loadInbox(rq.Context(), rq)
	if err != nil {
		return err
	}
	return rq.Render(http.StatusOK, "inbox.html", View{Title: "Inbox", Nav: "inbox", Data: d})
}

// loadInbox reads the inbox through the API: ListInbox per state, whose
// threads carry the patient's name and who asked, so showing the queue
// reads no patient's record (and leaves no record access in anyone's
// audit report).
func (c *Console) loadInbox(ctx context.Context, rq *Request) (inboxData, error) {
	me := rq.Session.AccountID
	groups := []inboxGroup{
		{ID: "escalated", Title: "Waiting over 4 hours"},
		{ID: "new", Title: "New"},
		{ID: "mine", Title: "Claimed by me"},
		{ID: "others", Title: "Claimed by others"},
		{ID: "answered", Title: "Answered"},
	}
	idx := map[string]int{}
	for i, g := range groups {
		idx[g.ID] = i
	}
	now := c.cfg.Now()
	for _, st := range []mtmv1.ThreadState{mtmv1.ThreadState_THREAD_STATE_OPEN, mtmv1.ThreadState_THREAD_STATE_CLAIMED, mtmv1.ThreadState_THREAD_STATE_ANSWERED} {
		res, err := rq.API.Messaging.ListInbox(ctx, connect.NewRequest(&mtmv1.ListInboxRequest{State: st, PageSize: 200}))
		if err != nil {
			return inboxData{}, err
		}
		for _, t := range res.Msg.GetThreads() {
			row := rowOf(t, now)
			g := "answered"
			switch {
			case t.GetState() == mtmv1.ThreadState_THREAD_STATE_OPEN && t.GetEscalated():
				g = "escalated"
			case t.GetState() == mtmv1.ThreadState_THREAD_STATE_OPEN:
				g = "new"
			case t.GetState() == mtmv1.ThreadState_THREAD_STATE_CLAIMED && t.GetClaimedBy() == me:
				g = "mine"
			case t.GetState() == mtmv1.ThreadState_THREAD_STATE_CLAIMED:
				g = "others"
			}
			groups[idx[g]].Rows = append(groups[idx[g]].Rows, row)
		}
	}
	for _, g := range groups {
		sort.SliceStable(g.Rows, func(i, j int) bool {
			return g.Rows[i].Thread.GetCreatedAt().AsTime().Before(g.Rows[j].Thread.GetCreatedAt().AsTime())
		})
	}
	return inboxData{Groups: groups}, nil
}

// rowOf is how the inbox lists thread t at now.
func rowOf(t *mtmv1.Thread, now time.Time) inboxRow {
	asker := "Patient"
	if t.GetStartedByCaregiver() {
		asker = "Caregiver"
	}
	return inboxRow{Thread: t, PatientName: t.GetPatientName(), Asker: asker, Age: age(now.Sub(t.GetCreatedAt().AsTime())),
		Link: threadLink(t.GetPatientId(), t.GetId())}
}

// threadLink is a thread's page: opaque ids only.
func threadLink(patientID, threadID string) string {
	return "/console/patients/" + patientID + "/threads/" + threadID
}

// age says a duration the way a queue shows it.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
}

// inboxEvents streams the inbox to the page as Server-Sent Events, fed by
// MessagingService.WatchInbox: on every change the inbox's groups are
// rendered again and sent as one "inbox" event (the page swaps them in).
// A "ready" event says the watch is established.
func (c *Console) inboxEvents(rq *Request) error {
	ctx, cancel := context.WithCancel(rq.Context())
	defer cancel()
	stream, err := rq.API.Messaging.WatchInbox(ctx, connect.NewRequest(&mtmv1.WatchInboxRequest{}))
	if err != nil {
		return err
	}
	defer stream.Close()
	// The first message (a heartbeat) says the watch stands.
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return err
		}
		return nil
	}
	flusher := http.NewResponseController(rq.W)
	h := rq.W.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	rq.W.WriteHeader(http.StatusOK)
	send := func(event, data string) error {
		var b strings.Builder
		fmt.Fprintf(&b, "event: %s\n", event)
		for line := range strings.SplitSeq(data, "\n") {
			fmt.Fprintf(&b, "data: %s\n", line)
		}
		b.WriteString("\n")
		if _, err := rq.W.Write([]byte(b.String())); err != nil {
			return err
		}
		return flusher.Flush()
	}
	render := func() error {
		d, err := c.loadInbox(ctx, rq)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := c.pages["inbox.html"].ExecuteTemplate(&buf, "groups", View{Data: d, Session: rq.Session}); err != nil {
			return err
		}
		return send("inbox", buf.String())
	}
	if _, err := rq.W.Write([]byte("retry: 2000\n\n")); err != nil {
		return nil
	}
	// Changes between the page's render and the watch: render once now.
	if err := render(); err != nil {
		return nil
	}
	if err := send("ready", "live"); err != nil {
		return nil
	}
	msgs := make(chan *mtmv1.WatchInboxResponse)
	go func() {
		defer close(msgs)
		for stream.Receive() {
			select {
			case msgs <- stream.Msg():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil // the watch ended (server draining); the page reconnects
			}
			if m.GetThread() == nil {
				if _, err := rq.W.Write([]byte(": heartbeat\n\n")); err != nil {
					return nil
				}
				if flusher.Flush() != nil {
					return nil
				}
				continue
			}
			// Fold a burst of changes into one render.
			for drained := false; !drained; {
				select {
				case _, ok := <-msgs:
					if !ok {
						drained = true
					}
				case <-time.After(50 * time.Millisecond):
					drained = true
				}
			}
			if err := render(); err != nil {
				c.cfg.Logger.WarnContext(ctx, "console: inbox events", "error", err.Error())
				return nil
			}
		}
	}
}

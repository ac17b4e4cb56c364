package console

import (
	"net/http"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// inboxData is the inbox page: threads grouped as a pharmacist works them.
type inboxData struct {
	Groups []inboxGroup
}

type inboxGroup struct {
	ID, Title string
	Threads   []*mtmv1.Thread
}

func (c *Console) inboxRoutes() {
	c.Page("GET /console/inbox", c.inbox)
}

func (c *Console) inbox(rq *Request) error {
	var all []*mtmv1.Thread
	for _, st := range []mtmv1.ThreadState{mtmv1.ThreadState_THREAD_STATE_OPEN, mtmv1.ThreadState_THREAD_STATE_CLAIMED, mtmv1.ThreadState_THREAD_STATE_ANSWERED} {
		res, err := rq.API.Messaging.ListInbox(rq.Context(), connect.NewRequest(&mtmv1.ListInboxRequest{State: st, PageSize: 200}))
		if err != nil {
			return err
		}
		all = append(all, res.Msg.GetThreads()...)
	}
	return rq.Render(http.StatusOK, "inbox.html", View{Title: "Inbox", Nav: "inbox", Data: inboxData{Groups: []inboxGroup{{ID: "all", Title: "Threads", Threads: all}}}})
}

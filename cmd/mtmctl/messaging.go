package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// The pharmacist's side of messaging: list the inbox, read a thread,
// claim, reply and close.

var inboxStates = map[string]mtmv1.ThreadState{
	"open": mtmv1.ThreadState_THREAD_STATE_OPEN, "claimed": mtmv1.ThreadState_THREAD_STATE_CLAIMED,
	"answered": mtmv1.ThreadState_THREAD_STATE_ANSWERED, "closed": mtmv1.ThreadState_THREAD_STATE_CLOSED,
}

func stateName(s mtmv1.ThreadState) string {
	for k, v := range inboxStates {
		if v == s {
			return k
		}
	}
	return "?"
}

func runInbox(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "inbox", "[--state open|claimed|answered|closed] [--limit N]")
	r := addRemoteFlags(sys, fs)
	stateFlag := fs.String("state", "open", "which threads: open, claimed, answered or closed")
	limit := fs.Int("limit", 50, "show at most `N` threads")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	state, ok := inboxStates[*stateFlag]
	if !ok {
		return fmt.Errorf("inbox: --state %q is not one of open, claimed, answered, closed", *stateFlag)
	}
	if *limit < 1 {
		return errors.New("inbox: --limit must be at least 1")
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var threads []*mtmv1.Thread
	token := ""
	for len(threads) < *limit {
		res, err := c.msg.ListInbox(ctx, connect.NewRequest(&mtmv1.ListInboxRequest{State: state, PageSize: int32(min(*limit-len(threads), 200)), PageToken: token}))
		if err != nil {
			return explain("inbox", err)
		}
		threads = append(threads, res.Msg.GetThreads()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(threads) == 0 {
		fmt.Fprintf(sys.stdout, "no %s threads\n", *stateFlag)
		return nil
	}
	tw := tabwriter.NewWriter(sys.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "THREAD\tPATIENT\tSTATE\tUPDATED\tUNREAD\tFLAG\tSUBJECT")
	for _, t := range threads {
		mark := ""
		if t.GetEscalated() {
			mark = "ESCALATED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.GetId(), t.GetPatientId(), stateName(t.GetState()),
			t.GetUpdatedAt().AsTime().Local().Format("2006-01-02 15:04"), t.GetUnreadCount(), mark, oneLine(t.GetSubject()))
	}
	return tw.Flush()
}

func runThread(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "thread", "<thread-id>")
	r := addRemoteFlags(sys, fs)
	id, err := threadArg(fs, args, "thread")
	if err != nil {
		return err
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("thread: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var last int64
	for {
		res, err := c.msg.ListMessages(ctx, connect.NewRequest(&mtmv1.ListMessagesRequest{ThreadId: id, AfterSeq: last, PageSize: 200}))
		if err != nil {
			return explain("thread", err)
		}
		msgs := res.Msg.GetMessages()
		for _, m := range msgs {
			fmt.Fprintf(sys.stdout, "#%d  %s  %s\n", m.GetSeq(), m.GetSentAt().AsTime().Local().Format("2006-01-02 15:04"), m.GetAuthorName())
			for line := range strings.SplitSeq(m.GetBody(), "\n") {
				fmt.Fprintf(sys.stdout, "    %s\n", line)
			}
			last = m.GetSeq()
		}
		if len(msgs) < 200 {
			break
		}
	}
	if last > 0 {
		if _, err := c.msg.MarkRead(ctx, connect.NewRequest(&mtmv1.MarkReadRequest{ThreadId: id, ReadThroughSeq: last})); err != nil {
			return explain("thread", err)
		}
	}
	return nil
}

func runClaim(ctx context.Context, sys system, args []string) error {
	return threadAction(ctx, sys, args, "claim", func(ctx context.Context, c client, id string) (*mtmv1.Thread, error) {
		res, err := c.msg.ClaimThread(ctx, connect.NewRequest(&mtmv1.ClaimThreadRequest{ThreadId: id}))
		return res.Msg.GetThread(), err
	})
}

func runClose(ctx context.Context, sys system, args []string) error {
	return threadAction(ctx, sys, args, "close", func(ctx context.Context, c client, id string) (*mtmv1.Thread, error) {
		res, err := c.msg.CloseThread(ctx, connect.NewRequest(&mtmv1.CloseThreadRequest{ThreadId: id}))
		return res.Msg.GetThread(), err
	})
}

// threadAction runs a call that changes one thread and prints its state.
func threadAction(ctx context.Context, sys system, args []string, name string, call func(context.Context, client, string) (*mtmv1.Thread, error)) error {
	fs := newFlags(sys, name, "<thread-id>")
	r := addRemoteFlags(sys, fs)
	id, err := threadArg(fs, args, name)
	if err != nil {
		return err
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	t, err := call(ctx, c, id)
	if err != nil {
		return explain(name, err)
	}
	fmt.Fprintf(sys.stdout, "thread %s is %s\n", t.GetId(), stateName(t.GetState()))
	return nil
}

func runReply(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "reply", "<thread-id> [--body TEXT]")
	r := addRemoteFlags(sys, fs)
	body := fs.String("body", "", "the reply (plain text); else read from stdin")
	clientID := fs.String("client-id", "", "idempotency `key`: repeat a reply with the same key to retry it safely (default: random)")
	id, err := threadArg(fs, args, "reply")
	if err != nil {
		return err
	}
	text := *body
	if text == "" {
		b, err := io.ReadAll(io.LimitReader(sys.stdin, 64<<10))
		if err != nil {
			return fmt.Errorf("reply: reading stdin: %w", err)
		}
		text = strings.TrimRight(string(b), "\n")
	}
	if strings.TrimSpace(text) == "" {
		return errors.New("reply: empty reply (use --body or stdin)")
	}
	if *clientID == "" {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("reply: %w", err)
		}
		*clientID = "ctl_" + hex.EncodeToString(b[:])
	}
	c, err := r.connect(ctx, sys)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	res, err := c.msg.SendMessage(ctx, connect.NewRequest(&mtmv1.SendMessageRequest{ThreadId: id, ClientMessageId: *clientID, Body: text}))
	if err != nil {
		return explain("reply", err)
	}
	fmt.Fprintf(sys.stdout, "sent as message #%d at %s\n", res.Msg.GetMessage().GetSeq(), res.Msg.GetMessage().GetSentAt().AsTime().Local().Format(time.RFC1123))
	return nil
}

// threadArg parses flags and the one positional thread id.
func threadArg(fs *flag.FlagSet, args []string, name string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("%s: want exactly one thread id", name)
	}
	return pos[0], nil
}

// oneLine shortens a subject to one line of a table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}

// Package replies pushes "your pharmacist replied" to the patient side of a
// thread: every device of the patient and of the caregiver who asked. The
// push carries no message text and no medicine name, only the ids the app
// needs to fetch the thread over an authenticated call.
//
// Pushes go out in the background so that a pharmacist's reply is not held
// up by FCM; the message itself is already stored, and the app shows it on
// its next open even if a push is lost with a crashing process.
package replies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/push"
	"github.com/mtmapp/mtm/notifications/pushtext"
)

// KindReply is the push kind of a pharmacist's reply (not a reminder: it
// never enters the due-time index).
const KindReply store.ReminderKind = "reply"

// sendTimeout bounds one reply's pushes.
const sendTimeout = 30 * time.Second

// Notifier implements the messaging service's ReplyNotifier.
type Notifier struct {
	st     store.Store
	sender push.Sender
	log    *slog.Logger
	now    func() time.Time
	wg     sync.WaitGroup
}

// New returns a Notifier; every argument but now is required (nil now
// means time.Now).
func New(st store.Store, sender push.Sender, log *slog.Logger, now func() time.Time) (*Notifier, error) {
	var errs []error
	if st == nil {
		errs = append(errs, errors.New("missing store"))
	}
	if sender == nil {
		errs = append(errs, errors.New("missing push sender"))
	}
	if log == nil {
		errs = append(errs, errors.New("missing logger"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("replies.New: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Notifier{st: st, sender: sender, log: log, now: now}, nil
}

// PharmacistReplied starts pushing the reply notice to the recipients'
// devices and returns at once. Recipients are the patient (the devices of
// pt, the patient's record) and caregiver accounts, who are pushed only
// while pt holds a grant of theirs with the message scope. pt is not read
// again: it must be the record that admitted the reply, read during the
// call that stored it (see api.ReplyNotifier), so that a revocation
// acknowledged before that call is in it. The caregivers' accounts (their
// devices) are read.
func (n *Notifier) PharmacistReplied(ctx context.Context, pt store.Patient, threadID string, recipients []string) error {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
		defer cancel()
		if err := n.push(ctx, pt, threadID, recipients); err != nil {
			n.log.WarnContext(ctx, "reply push failed", slog.String("thread", threadID), slog.String("error", err.Error()))
		}
	}()
	return nil
}

// Wait blocks until every reply push started so far has finished.
func (n *Notifier) Wait() { n.wg.Wait() }

func (n *Notifier) push(ctx context.Context, pt store.Patient, threadID string, recipients []string) error {
	patientID := pt.ID
	today := store.DateOf(n.now())
	msg := func(dv store.Device, owner string) push.Message {
		return push.Message{
			Token: dv.FCMToken, DeviceID: dv.ID, OwnerID: owner, Kind: KindReply,
			Title: pushtext.Text(pt.PreferredLanguage, pushtext.ReplyTitle, nil), Body: pushtext.Text(pt.PreferredLanguage, pushtext.ReplyBody, nil),
			Data:        map[string]string{"type": "reply", "patient_id": patientID, "thread_id": threadID},
			CollapseKey: "reply-" + threadID,
		}
	}
	var msgs []push.Message
	accountOf := map[string]bool{}
	for _, r := range slices.Compact(slices.Sorted(slices.Values(recipients))) {
		if r == pt.ID {
			for _, dv := range pt.Devices {
				msgs = append(msgs, msg(dv, pt.ID))
			}
			continue
		}
		if !slices.ContainsFunc(pt.Grants, func(g store.Grant) bool { return g.CaregiverID == r && g.Allows(store.ScopeMessage, today) }) {
			continue // the caregiver no longer may read the thread
		}
		acct, err := n.st.GetAccount(ctx, r)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		accountOf[acct.ID] = true
		for _, dv := range acct.Devices {
			msgs = append(msgs, msg(dv, acct.ID))
		}
	}
	return push.SendAndPrune(ctx, n.sender, n.st, msgs, func(owner string) bool { return accountOf[owner] })
}

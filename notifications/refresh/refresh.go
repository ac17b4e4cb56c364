// Package refresh wakes the apps of a patient's side when the pharmacy
// changes the patient's Personal Medication List, Medication Action Plan
// or dose schedules: a silent, data-only push (no text, no medicine, only
// the patient id) to every device of the patient and of each caregiver
// whose grant lets them see the PML or the plan, so the app fetches
// GetChanges in the background.
//
// Pushes are collapsed twice: on the device (collapse key and
// apns-collapse-id "sync-<patient>", so an offline phone gets one), and
// here, in each process: the changes to one patient within Window are
// sent as one push. A push is sent only when the change log shows a change
// to those parts since the first edit of the window, so a pharmacist's
// edit of something the apps do not sync wakes nobody.
package refresh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/push"
)

// KindSync is the push kind of a silent refresh.
const KindSync store.ReminderKind = "sync"

// DefaultWindow is how long the notifier gathers a patient's changes into
// one push when Options.Window is zero.
const DefaultWindow = time.Second

// sendTimeout bounds one patient's pushes.
const sendTimeout = 30 * time.Second

// Options configure a Notifier.
type Options struct {
	// Window is how long after a patient's first change the push goes
	// out, carrying every change made meanwhile (default DefaultWindow).
	Window time.Duration
	// Now is the clock that dates a caregiver's grant (default time.Now).
	Now func() time.Time
}

// Notifier implements the API's RecordNotifier.
type Notifier struct {
	st     store.Store
	sender push.Sender
	log    *slog.Logger
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	pending map[string]int64 // patient → change-log position before the window's first change
	wg      sync.WaitGroup
}

// New returns a Notifier; st, sender and log are required.
func New(st store.Store, sender push.Sender, log *slog.Logger, opts Options) (*Notifier, error) {
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
		return nil, fmt.Errorf("refresh.New: %w", err)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Notifier{st: st, sender: sender, log: log, window: opts.Window, now: opts.Now, pending: map[string]int64{}}, nil
}

// RecordChanged notes that the pharmacy wrote the patient's record, whose
// change log stood at since (store.PartVersions.Latest of
// store.PushedKinds) before the write, and returns at once. The push goes
// out after the window, once for every write to the patient within it.
func (n *Notifier) RecordChanged(ctx context.Context, patientID string, since int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur, ok := n.pending[patientID]; ok {
		n.pending[patientID] = min(cur, since)
		return
	}
	n.pending[patientID] = since
	n.wg.Add(1)
	ctx = context.WithoutCancel(ctx)
	time.AfterFunc(n.window, func() {
		defer n.wg.Done()
		n.mu.Lock()
		since := n.pending[patientID]
		delete(n.pending, patientID)
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, sendTimeout)
		defer cancel()
		if err := n.push(ctx, patientID, since); err != nil {
			n.log.WarnContext(ctx, "refresh push failed", slog.String("patient", patientID), slog.String("error", err.Error()))
		}
	})
}

// Wait blocks until every push noted so far has gone out.
func (n *Notifier) Wait() { n.wg.Wait() }

// Message is the silent push for one device of the patient's side.
func Message(patientID string, dv store.Device, owner string) push.Message {
	return push.Message{
		Token: dv.FCMToken, DeviceID: dv.ID, OwnerID: owner, Kind: KindSync, Silent: true,
		Data:        map[string]string{"type": "sync", "patient_id": patientID},
		CollapseKey: "sync-" + patientID,
	}
}

func (n *Notifier) push(ctx context.Context, patientID string, since int64) error {
	pv, err := n.st.PatientParts(ctx, patientID)
	if err != nil {
		return err
	}
	if pv.Latest(store.PushedKinds...) <= since {
		return nil // nothing the apps sync changed
	}
	pt, err := n.st.GetPatient(ctx, patientID)
	if err != nil {
		return err
	}
	var msgs []push.Message
	for _, dv := range pt.Devices {
		msgs = append(msgs, Message(patientID, dv, pt.ID))
	}
	accountOf := map[string]bool{}
	now := n.now()
	if loc, err := time.LoadLocation(pt.TimeZone); err == nil {
		now = now.In(loc)
	}
	today := store.DateOf(now)
	for _, g := range pt.Grants {
		if accountOf[g.CaregiverID] || !g.Allows(store.ScopeViewMedicines, today) && !g.Allows(store.ScopeViewPlan, today) {
			continue
		}
		acct, err := n.st.GetAccount(ctx, g.CaregiverID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		accountOf[acct.ID] = true
		for _, dv := range acct.Devices {
			msgs = append(msgs, Message(patientID, dv, acct.ID))
		}
	}
	return push.SendAndPrune(ctx, n.sender, n.st, msgs, func(owner string) bool { return accountOf[owner] })
}

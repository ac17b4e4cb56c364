// Package dispatch sends reminders when they come due. A Dispatcher claims
// due reminders from the store's sharded due-time index in batches under a
// lease, checks each against the patient's current record, pushes them
// through a push.Sender, then records them in the patients' notification
// histories and acknowledges them together with the next occurrences, in
// one atomic step per shard (store.Reminders.SettleReminders).
//
// Delivery is at least once: a dispatcher that dies after claiming loses
// nothing, because its lease runs out and another dispatcher (in this or
// another process) claims the same reminders. Leases are short (15 s by
// default) and renewed while a batch is worked, so a crashed instance's
// reminders go out seconds late, not minutes. Once pushes went out, the
// settle step is retried until the store answers (or the drain ends): a
// store outage delays the bookkeeping but does not re-send the batch. The reminder's key is its
// dedupe key: once acknowledged it is not claimed again, and the push
// carries the occurrence as collapse key (Android tag, APNs collapse id),
// so the rare re-send after a crash between send and acknowledgement
// replaces the notification on the phone instead of showing it twice.
//
// Planner (planner.go) keeps the index in step with records: dose
// schedules, fills (refill reminders), follow-ups and snoozes.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/push"
	"github.com/mtmapp/mtm/notifications/pushtext"
	"github.com/mtmapp/mtm/notifications/schedule"
)

// Defaults of Config.
const (
	DefaultBatch        = 500
	DefaultLease        = 15 * time.Second
	DefaultRenew        = 5 * time.Second
	DefaultPoll         = time.Second
	DefaultDedupeWindow = 6 * time.Hour
	DefaultHistoryKeep  = 200
	DefaultDrainTimeout = 10 * time.Second
	DefaultLoaders      = 32
	DefaultWorkers      = 4
)

// Config configures a Dispatcher. Store, Sender and Logger are required.
type Config struct {
	Store   store.Store
	Sender  push.Sender
	Logger  *slog.Logger
	Planner PlannerConfig
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Batch is how many reminders one claim takes (default 500).
	Batch int
	// Lease is how long claimed reminders stay with this dispatcher
	// before another may take them (default 15s): the longest a crashed
	// instance's reminders wait. Renewals keep it while a batch works.
	Lease time.Duration
	// Renew is how often the leases of a batch in progress are extended
	// (default Lease/3, at most 5s); it must be under half the lease.
	Renew time.Duration
	// Registerer, when set, gets the dispatcher's metrics (the Metric
	// constants).
	Registerer prometheus.Registerer
	// Poll is how often a worker that found nothing due looks again
	// (default 1s). It looks on the clock's multiples of Poll (whole
	// seconds by default), where reminders come due (see pollWait).
	Poll time.Duration
	// Workers is how many shards are worked at once (default 4: each batch
	// already sends 50 pushes at a time, and more concurrent batches only
	// contend for CPU; the burst benchmark measured 16 well below 4 on two
	// cores).
	Workers int
	// DedupeWindow is how long a sent reminder's key blocks a re-send
	// (default 6h).
	DedupeWindow time.Duration
	// HistoryKeep bounds each patient's notification history (default 200).
	HistoryKeep int
	// DrainTimeout is how long batches in flight get to finish after Run's
	// context ends (default 10s).
	DrainTimeout time.Duration
	// Loaders bounds concurrent record reads per batch (default 32).
	Loaders int
	// Tracer, when set, gives every batch that claimed reminders a span
	// ("dispatch.batch": shard, counts), the parent of its store and push
	// spans.
	Tracer trace.Tracer
}

// Dispatcher works the due-time index. It is safe for concurrent use;
// several Dispatchers (in one or many processes) may work the same store.
type Dispatcher struct {
	cfg     Config
	planner *Planner
	metrics *metrics
}

// New returns a Dispatcher or an error naming every missing dependency.
func New(cfg Config) (*Dispatcher, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("missing store"))
	}
	if cfg.Sender == nil {
		errs = append(errs, errors.New("missing push sender"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("missing logger"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("dispatch.New: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Renew <= 0 {
		cfg.Renew = min(DefaultRenew, cfg.Lease/3)
	}
	if cfg.Renew*2 > cfg.Lease {
		return nil, fmt.Errorf("dispatch.New: renew interval %s must be at most half the lease %s", cfg.Renew, cfg.Lease)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.HistoryKeep <= 0 {
		cfg.HistoryKeep = DefaultHistoryKeep
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Loaders <= 0 {
		cfg.Loaders = DefaultLoaders
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("dispatch.New: %w", err)
	}
	return &Dispatcher{cfg: cfg, planner: NewPlanner(cfg.Store, cfg.Planner), metrics: m}, nil
}

// Planner returns the planner with the dispatcher's configuration, for the
// API to keep the index in step.
func (d *Dispatcher) Planner() *Planner { return d.planner }

// Run works every shard until ctx ends, then lets batches in flight finish
// (send, history, acknowledgement) for up to DrainTimeout and returns nil.
// It claims nothing after ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(d.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-work.Done():
		}
	})
	defer stop()
	shards := d.cfg.Store.ReminderShards()
	var wg sync.WaitGroup
	for w := range min(d.cfg.Workers, shards) {
		wg.Go(func() {
			failing := map[int]int{} // shard → failed rounds since the last success
			for ctx.Err() == nil {
				busy := false
				for sh := w; sh < shards && ctx.Err() == nil; sh += d.cfg.Workers {
					n, err := d.RunOnce(work, sh)
					switch {
					case err != nil && work.Err() == nil:
						// One warning when a shard starts failing, one line
						// when it recovers: an outage is not a log flood.
						if failing[sh]++; failing[sh] == 1 {
							d.cfg.Logger.Warn("reminder batch failed; retrying quietly until it works", slog.Int("shard", sh), slog.String("error", err.Error()))
						}
					case err == nil && failing[sh] > 0:
						d.cfg.Logger.Info("reminder batches work again", slog.Int("shard", sh), slog.Int("failed_rounds", failing[sh]))
						delete(failing, sh)
					}
					busy = busy || n == d.cfg.Batch
				}
				if !busy {
					t := time.NewTimer(pollWait(d.cfg.Now(), d.cfg.Poll))
					select {
					case <-ctx.Done():
					case <-t.C:
					}
					t.Stop()
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// pollMargin is how long after a multiple of Poll an idle worker looks
// again: past the boundary even if the wall clock was slewed back a little
// since the wait began.
const pollMargin = time.Millisecond

// pollWait is how long a worker whose round found nothing due waits: until
// just after the next multiple of poll on the clock (the next whole second
// by default), never more than poll and a margin. Reminders come due on
// whole seconds (occurrences are whole seconds: the 8:00 dose is due at
// 8:00:00.000), so a worker looking on the boundary claims them as they
// come due, where a fixed wait from the end of the last round found them
// anywhere up to a Poll later (about half a second on average, the same for
// every instance). Workers of every instance look at those instants, and
// no more often than before.
func pollWait(now time.Time, poll time.Duration) time.Duration {
	return now.Truncate(poll).Add(poll).Sub(now) + pollMargin
}

// item is one claimed reminder on its way.
type item struct {
	r        store.Reminder
	msgs     []int // indexes into the batch's messages
	done     bool  // acknowledge (sent, stale or nothing to send)
	next     []store.Reminder
	sendable bool
}

// RunOnce claims one batch of due reminders of shard, sends them and
// acknowledges them. It returns how many it claimed. While it works, the
// batch's leases are renewed every Renew. Reminders whose pushes must be
// retried are moved one lease later. After the pushes, the settle step is
// retried with backoff while the store is unavailable, until ctx ends.
func (d *Dispatcher) RunOnce(ctx context.Context, shard int) (_ int, err error) {
	start := time.Now()
	now := d.cfg.Now()
	claimed, err := d.cfg.Store.ClaimDueReminders(ctx, shard, now, d.cfg.Lease, d.cfg.Batch)
	if err != nil {
		if ctx.Err() == nil {
			d.metrics.batchFailures.WithLabelValues("claim").Inc()
		}
		return 0, err
	}
	if len(claimed) == 0 {
		return 0, nil
	}
	if d.cfg.Tracer != nil {
		// Empty polls (every shard, every Poll) get no span; a batch's
		// span starts when its claim did.
		var span trace.Span
		ctx, span = d.cfg.Tracer.Start(ctx, "dispatch.batch", trace.WithTimestamp(start),
			trace.WithAttributes(attribute.Int("mtm.shard", shard), attribute.Int("mtm.reminders.claimed", len(claimed))))
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, "batch failed")
			}
			span.End()
		}()
	}
	for _, r := range claimed {
		if r.Reclaimed {
			d.metrics.takeovers.Inc()
		} else {
			d.metrics.due.WithLabelValues(string(r.Kind)).Inc()
		}
	}
	keeper := d.keepLeases(ctx, shard, claimed)
	defer keeper.stop()
	rc, err := d.cfg.Store.LoadReminderContext(ctx, claimed)
	if err != nil {
		if ctx.Err() == nil {
			d.metrics.batchFailures.WithLabelValues("load").Inc()
		}
		return len(claimed), fmt.Errorf("dispatch: %w", err) // the lease brings the batch back
	}
	caregivers := d.loadCaregivers(ctx, claimed, rc.Patients, now)
	items := make([]item, len(claimed))
	var msgs []push.Message
	for i, r := range claimed {
		it := &items[i]
		it.r = r
		pt, ok := rc.Patients[r.PatientID]
		if !ok {
			it.done = true // the patient is gone
			continue
		}
		out := d.decide(it, pt, caregivers, rc.Doses, now)
		for _, m := range out {
			it.msgs = append(it.msgs, len(msgs))
			msgs = append(msgs, m)
		}
	}
	var results []push.Result
	if len(msgs) > 0 {
		trace.SpanFromContext(ctx).SetAttributes(attribute.Int("mtm.pushes", len(msgs)))
		results = d.cfg.Sender.Send(ctx, msgs)
	}
	var history []store.Notification
	var done, next []store.Reminder
	var invalid []push.Message
	sentAt := d.cfg.Now()
	for i := range items {
		it := &items[i]
		kind := string(it.r.Kind)
		switch {
		case !it.sendable && it.done:
			d.metrics.unsent.WithLabelValues(kind, "obsolete").Inc()
		case !it.sendable:
			d.metrics.unsent.WithLabelValues(kind, "deferred").Inc()
		case len(it.msgs) == 0:
			d.metrics.unsent.WithLabelValues(kind, "no_device").Inc()
		}
		if it.sendable && len(it.msgs) > 0 {
			retry, sent := false, 0
			for _, mi := range it.msgs {
				switch results[mi].Outcome {
				case push.Retry:
					retry = true
				case push.InvalidToken:
					invalid = append(invalid, msgs[mi])
				case push.Sent:
					sent++
				}
			}
			if retry {
				// Tried again one lease later (its next occurrence is
				// planned when it goes out).
				d.metrics.unsent.WithLabelValues(kind, "retry").Inc()
				again := it.r
				again.DueAt = sentAt.Add(d.cfg.Lease)
				next = append(next, again)
				continue
			}
			it.done = true
			if sent > 0 {
				d.metrics.sent.WithLabelValues(kind).Inc()
				d.metrics.lateness.WithLabelValues(kind).Observe(max(sentAt.Sub(it.r.DueAt), 0).Seconds())
				history = append(history, store.Notification{PatientID: it.r.PatientID, Key: it.r.Key(), OccurrenceID: it.r.OccurrenceID(),
					Kind: it.r.Kind, SentAt: sentAt})
			} else {
				d.metrics.unsent.WithLabelValues(kind, "refused").Inc()
			}
		}
		if it.done {
			done = append(done, it.r)
		}
		next = append(next, it.next...)
	}
	d.pruneDevices(ctx, invalid)
	err = d.settle(ctx, shard, keeper, store.Settlement{Done: done, Next: next, Sent: history,
		Now: d.cfg.Now(), DedupeWindow: d.cfg.DedupeWindow, HistoryKeep: d.cfg.HistoryKeep})
	if err != nil {
		if ctx.Err() == nil {
			d.metrics.batchFailures.WithLabelValues("settle").Inc()
		}
		return len(claimed), fmt.Errorf("dispatch: settle: %w", err)
	}
	d.metrics.batchDurations.Observe(time.Since(start).Seconds())
	return len(claimed), nil
}

// decide checks a reminder against the current record and returns the
// pushes to send; it sets it.done / it.next / it.sendable.
func (d *Dispatcher) decide(it *item, pt store.Patient, caregivers map[string]store.Account, doses map[string]store.DoseRecord, now time.Time) []push.Message {
	r := it.r
	loc := d.planner.zones.Get(pt.TimeZone)
	switch r.Kind {
	case store.ReminderDose:
		i := slices.IndexFunc(pt.DoseSchedules, func(s store.DoseSchedule) bool { return s.ID == r.RefID })
		if i < 0 {
			it.done = true // schedule deleted
			return nil
		}
		s := pt.DoseSchedules[i]
		if t, ok := schedule.NextDose(s, loc, r.Occurrence.Add(-time.Second)); !ok || !t.Equal(r.Occurrence) {
			it.done = true // schedule changed: the planner scheduled its new doses
			return nil
		}
		if r.Attempt == 0 {
			if n, ok := d.planner.NextDose(pt, s, r.Occurrence); ok {
				it.next = append(it.next, n)
			}
			if hasMissedDoseCaregiver(pt, loc, now) {
				it.next = append(it.next, d.planner.MissedDoseCheck(r))
			}
		}
		if rec, ok := doses[store.DoseKey(pt.ID, r.OccurrenceID())]; ok && rec.Outcome != store.DoseSnoozed {
			it.done = true // already taken or skipped
			return nil
		}
		return d.patientPushes(it, pt, doseText(pt, s))
	case store.ReminderRefill:
		cur, ok := d.planner.Refill(pt, r.RefID)
		if !ok || !cur.Occurrence.Equal(r.Occurrence) {
			it.done = true // refilled since, or stopped
			return nil
		}
		if d.deferQuiet(it, pt, loc, now) {
			return nil
		}
		return d.patientPushes(it, pt, refillText(pt, r.RefID))
	case store.ReminderFollowUp:
		i := slices.IndexFunc(pt.FollowUps, func(f store.FollowUp) bool { return f.ID == r.RefID })
		if i < 0 || !pt.FollowUps[i].DueAt.Truncate(time.Second).Equal(r.Occurrence) {
			it.done = true
			return nil
		}
		if d.deferQuiet(it, pt, loc, now) {
			return nil
		}
		return d.patientPushes(it, pt, localized(pt, pushtext.FollowUpTitle, pushtext.FollowUpBody, nil))
	case store.ReminderMissedDose:
		dose := store.Reminder{PatientID: r.PatientID, Kind: store.ReminderDose, RefID: r.RefID, Occurrence: r.Occurrence}
		rec, confirmed := doses[store.DoseKey(pt.ID, dose.OccurrenceID())]
		switch {
		case confirmed && rec.Outcome != store.DoseSnoozed:
			it.done = true
			return nil
		case confirmed && rec.SnoozedUntil.Add(d.planner.cfg.MissedDoseWindow).After(now):
			moved := r
			moved.DueAt = rec.SnoozedUntil.Add(d.planner.cfg.MissedDoseWindow)
			it.next = append(it.next, moved)
			return nil
		}
		it.sendable = true
		var out []push.Message
		for _, g := range pt.Grants {
			if !g.Allows(store.ScopeMissedDoseAlerts, store.DateOf(now.In(loc))) {
				continue
			}
			for _, dv := range caregivers[g.CaregiverID].Devices {
				out = append(out, push.Message{Token: dv.FCMToken, DeviceID: dv.ID, OwnerID: g.CaregiverID, Kind: r.Kind,
					Title: pushtext.Text(pt.PreferredLanguage, pushtext.MissedDoseTitle, nil), Body: pushtext.Text(pt.PreferredLanguage, pushtext.MissedDoseBody, nil),
					Data: map[string]string{"kind": string(r.Kind), "patient_id": pt.ID, "occurrence_id": dose.OccurrenceID()}, CollapseKey: r.OccurrenceID()})
			}
		}
		if len(out) == 0 {
			it.done = true
		}
		return out
	}
	it.done = true
	return nil
}

// deferQuiet moves a non-urgent reminder due in quiet hours to their end.
func (d *Dispatcher) deferQuiet(it *item, pt store.Patient, loc *time.Location, now time.Time) bool {
	if !schedule.InQuietHours(now, pt.QuietHours, loc) {
		return false
	}
	moved := it.r
	moved.DueAt = schedule.DeferQuiet(now, pt.QuietHours, loc)
	it.next = append(it.next, moved)
	return true
}

type text struct{ title, body string }

// localized is a push text in the patient's preferred language
// (notifications/pushtext).
func localized(pt store.Patient, titleKey, bodyKey string, vars map[string]string) text {
	return text{pushtext.Text(pt.PreferredLanguage, titleKey, vars), pushtext.Text(pt.PreferredLanguage, bodyKey, vars)}
}

// doseText names the medicine only for a patient who opted in.
func doseText(pt store.Patient, s store.DoseSchedule) text {
	if pt.PushNamesMedicine {
		if m, ok := medication(pt, s.MedicationID); ok {
			return localized(pt, pushtext.DoseTitle, pushtext.DoseBodyNamed, map[string]string{"medicine": withStrength(m)})
		}
	}
	return localized(pt, pushtext.DoseTitle, pushtext.DoseBody, nil)
}

// refillText names the medicine only for a patient who opted in.
func refillText(pt store.Patient, medicationID string) text {
	if pt.PushNamesMedicine {
		if m, ok := medication(pt, medicationID); ok {
			return localized(pt, pushtext.RefillTitle, pushtext.RefillBodyNamed, map[string]string{"medicine": withStrength(m)})
		}
	}
	return localized(pt, pushtext.RefillTitle, pushtext.RefillBody, nil)
}

func medication(pt store.Patient, id string) (store.Medication, bool) {
	i := slices.IndexFunc(pt.Medications, func(m store.Medication) bool { return m.ID == id })
	if i < 0 {
		return store.Medication{}, false
	}
	return pt.Medications[i], true
}

func withStrength(m store.Medication) string {
	if m.Strength == "" {
		return m.Name
	}
	return m.Name + " " + m.Strength
}

// patientPushes is one push per patient device; data carries ids only.
func (d *Dispatcher) patientPushes(it *item, pt store.Patient, t text) []push.Message {
	it.sendable = true
	r := it.r
	if len(pt.Devices) == 0 {
		it.done = true
		return nil
	}
	data := map[string]string{"kind": string(r.Kind), "patient_id": pt.ID, "occurrence_id": r.OccurrenceID()}
	switch r.Kind {
	case store.ReminderDose:
		data["dose_schedule_id"] = r.RefID
	case store.ReminderRefill:
		data["medication_id"] = r.RefID
	case store.ReminderFollowUp:
		data["follow_up_id"] = r.RefID
	}
	out := make([]push.Message, 0, len(pt.Devices))
	for _, dv := range pt.Devices {
		out = append(out, push.Message{Token: dv.FCMToken, DeviceID: dv.ID, OwnerID: pt.ID, Kind: r.Kind, Title: t.title, Body: t.body,
			Data: data, CollapseKey: r.OccurrenceID()})
	}
	return out
}

func hasMissedDoseCaregiver(pt store.Patient, loc *time.Location, now time.Time) bool {
	today := store.DateOf(now.In(loc))
	for _, g := range pt.Grants {
		if g.Allows(store.ScopeMissedDoseAlerts, today) {
			return true
		}
	}
	return false
}

// loadCaregivers reads the accounts of caregivers who get missed-dose
// alerts in this batch.
func (d *Dispatcher) loadCaregivers(ctx context.Context, rs []store.Reminder, patients map[string]store.Patient, now time.Time) map[string]store.Account {
	var ids []string
	seen := map[string]bool{}
	for _, r := range rs {
		if r.Kind != store.ReminderMissedDose {
			continue
		}
		pt := patients[r.PatientID]
		for _, g := range pt.Grants {
			if g.Allows(store.ScopeMissedDoseAlerts, store.DateOf(now.In(d.planner.zones.Get(pt.TimeZone)))) && !seen[g.CaregiverID] {
				seen[g.CaregiverID] = true
				ids = append(ids, g.CaregiverID)
			}
		}
	}
	out := map[string]store.Account{}
	var mu sync.Mutex
	d.parallel(len(ids), func(i int) {
		a, err := d.cfg.Store.GetAccount(ctx, ids[i])
		if err != nil {
			return
		}
		mu.Lock()
		out[ids[i]] = a
		mu.Unlock()
	})
	return out
}

func (d *Dispatcher) parallel(n int, fn func(i int)) {
	sem := make(chan struct{}, d.cfg.Loaders)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// pruneDevices deletes devices whose tokens FCM called unregistered or
// invalid, from the patient's record or the caregiver's account (only if
// the device still holds that token).
func (d *Dispatcher) pruneDevices(ctx context.Context, invalid []push.Message) {
	for _, m := range invalid {
		err := push.DeleteDevice(ctx, d.cfg.Store, m.Kind == store.ReminderMissedDose, m.OwnerID, m.DeviceID, m.Token)
		if err != nil {
			d.cfg.Logger.Warn("could not delete an invalid push device", slog.String("device", m.DeviceID), slog.String("error", err.Error()))
			continue
		}
		d.cfg.Logger.Info("push device deleted: token no longer valid", slog.String("device", m.DeviceID))
	}
}

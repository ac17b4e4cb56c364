package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/notifications/dispatch"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// eightAM is 08:00 in New York on a winter Monday.
var eightAM = time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC)

// backends are the stores every dispatcher test runs on.
var backends = []struct {
	name string
	open func(t *testing.T) store.Store
}{
	{"bolt", func(t *testing.T) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"redis", func(t *testing.T) store.Store {
		addr, _ := redistest.StartServer(t)
		client := redis.NewUniversalClient(redisstore.Config{Addrs: []string{addr}}.UniversalOptions(2 * time.Second))
		t.Cleanup(func() { client.Close() })
		s, err := redisstore.New(t.Context(), client, redisstore.Options{KEK: redistest.KEK()})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

func forEachBackend(t *testing.T, fn func(t *testing.T, h *harness)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, newHarness(t, b.open(t))) })
	}
}

// harness is a store, a fake FCM behind the real SDK and a clock.
type harness struct {
	t      *testing.T
	st     store.Store
	fake   *fcmfake.Server
	sender *push.FCM
	clock  *clock
}

func newHarness(t *testing.T, st store.Store) *harness {
	fake := fcmfake.New(fcmfake.Options{UnregisteredPrefix: "gone-"})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	sender, err := push.NewFCM(t.Context(), push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler),
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, st: st, fake: fake, sender: sender, clock: &clock{now: eightAM}}
}

func (h *harness) dispatcher(sender push.Sender) *dispatch.Dispatcher {
	h.t.Helper()
	d, err := dispatch.New(dispatch.Config{Store: h.st, Sender: sender, Logger: slog.New(slog.DiscardHandler), Now: h.clock.Now,
		Lease: 30 * time.Second, Batch: 1000, Poll: 10 * time.Millisecond})
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// patient stores a New York patient with one device and a daily 08:00
// schedule of one medicine, and schedules its first reminder.
func (h *harness) patient(id string, edit ...func(*store.Patient)) store.Patient {
	h.t.Helper()
	pt := store.Patient{ID: id, PharmacyID: "ph-1", GivenName: "Pat", FamilyName: id, TimeZone: "America/New_York",
		Medications:   []store.Medication{{ID: "md-1", Name: "Lisinopril", Strength: "10 mg", StartedOn: store.Date{Year: 2025, Month: 1, Day: 1}, Version: 1}},
		Devices:       []store.Device{{ID: "dv-" + id, FCMToken: "tok-" + id, Platform: "android"}},
		DoseSchedules: []store.DoseSchedule{{ID: "ds-1", MedicationID: "md-1", TimesOfDay: []int{8 * 60}}},
		CreatedAt:     eightAM.Add(-24 * time.Hour)}
	for _, e := range edit {
		e(&pt)
	}
	ctx := h.t.Context()
	if err := h.st.CreatePatient(ctx, pt); err != nil {
		h.t.Fatal(err)
	}
	planner := dispatch.NewPlanner(h.st, dispatch.PlannerConfig{})
	if err := planner.SchedulesChanged(ctx, store.Patient{}, pt, h.clock.Now().Add(-time.Minute)); err != nil {
		h.t.Fatal(err)
	}
	return pt
}

// runAll runs one round over every shard.
func (h *harness) runAll(d *dispatch.Dispatcher) int {
	h.t.Helper()
	n := 0
	for sh := range h.st.ReminderShards() {
		k, err := d.RunOnce(h.t.Context(), sh)
		if err != nil {
			h.t.Fatalf("RunOnce(shard %d): %v", sh, err)
		}
		n += k
	}
	return n
}

// shown is what each device displays: FCM messages by token, collapsed by
// their tag as the phone does.
func (h *harness) shown() map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, r := range h.fake.Received() {
		if out[r.Token] == nil {
			out[r.Token] = map[string]int{}
		}
		out[r.Token][r.Tag]++
	}
	return out
}

// killer sends the first half of the first batch it is given through the
// real sender, then "kills" its dispatcher: cancels its context, so that
// nothing after the send (history, acknowledgement) happens.
type killer struct {
	real   push.Sender
	cancel context.CancelFunc
}

func (k killer) Send(ctx context.Context, msgs []push.Message) []push.Result {
	half := len(msgs) / 2
	out := make([]push.Result, len(msgs))
	copy(out, k.real.Send(ctx, msgs[:half]))
	k.cancel()
	for i := half; i < len(msgs); i++ {
		out[i] = push.Result{Outcome: push.Retry, Err: context.Canceled}
	}
	return out
}

// TestKilledDispatcherLosesNothingAndDeduplicates kills a dispatcher in the
// middle of a batch (after half the pushes went out, before history and
// acknowledgement) and lets a second dispatcher take over when the lease
// ends: every patient is shown each reminder exactly once (a re-sent push
// carries the same collapse tag and replaces the first), the history holds
// it once, and the next day's dose is scheduled once.
func TestKilledDispatcherLosesNothingAndDeduplicates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		const n = 60
		for i := range n {
			h.patient(fmt.Sprintf("pt-%03d", i))
		}
		ctx, cancel := context.WithCancel(t.Context())
		a := h.dispatcher(killer{real: h.sender, cancel: cancel})
		claimed := 0
		for sh := range h.st.ReminderShards() {
			k, err := a.RunOnce(ctx, sh)
			claimed += k
			if err == nil && k > 0 {
				t.Fatalf("killed dispatcher acknowledged shard %d", sh)
			}
			if ctx.Err() != nil {
				break
			}
		}
		firstWave := h.fake.Accepted()
		if firstWave == 0 || claimed == 0 {
			t.Fatalf("the killed dispatcher sent %d of %d claimed", firstWave, claimed)
		}

		b := h.dispatcher(h.sender)
		if got := h.runAll(b); got != n-claimed {
			t.Fatalf("while A's lease stands, B claimed %d, want only the %d A never claimed", got, n-claimed)
		}
		h.clock.Set(eightAM.Add(31 * time.Second)) // A's lease has run out
		if got := h.runAll(b); got != claimed {
			t.Fatalf("after the lease, B claimed %d, want A's %d", got, claimed)
		}
		h.clock.Set(eightAM.Add(2 * time.Minute))
		if got := h.runAll(b); got != 0 {
			t.Fatalf("a later round claimed %d more", got)
		}

		shown := h.shown()
		for i := range n {
			pid := fmt.Sprintf("pt-%03d", i)
			tags := shown["tok-"+pid]
			if len(tags) != 1 {
				t.Fatalf("%s's phone shows %d notifications (%v), want exactly 1", pid, len(tags), tags)
			}
			hist, err := h.st.ListNotifications(t.Context(), pid, 10)
			if err != nil || len(hist) != 1 {
				t.Fatalf("%s's history: %v, %v; want one entry", pid, hist, err)
			}
		}
		t.Logf("%d patients: killed dispatcher claimed %d and pushed %d; FCM got %d pushes in all, every phone shows one notification",
			n, claimed, firstWave, h.fake.Accepted())

		// Tomorrow's 08:00 is scheduled once per patient.
		h.clock.Set(eightAM.Add(24 * time.Hour))
		if got := h.runAll(b); got != n {
			t.Fatalf("next day: claimed %d reminders, want %d", got, n)
		}
	})
}

func TestMissedDoseAlertsCaregiversOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		for _, id := range []string{"cg-alerts", "cg-view"} {
			if err := h.st.CreateAccount(ctx, store.Account{ID: id, Email: id + "@cg.test", Role: store.RoleCaregiver, CreatedAt: eightAM,
				Devices: []store.Device{{ID: "dv-" + id, FCMToken: "tok-" + id, Platform: "ios"}}}); err != nil {
				t.Fatal(err)
			}
		}
		grants := func(p *store.Patient) {
			p.Grants = []store.Grant{
				{ID: "gr-1", CaregiverID: "cg-alerts", Scopes: []store.Scope{store.ScopeMissedDoseAlerts}, CreatedAt: eightAM},
				{ID: "gr-2", CaregiverID: "cg-view", Scopes: []store.Scope{store.ScopeViewMedicines}, CreatedAt: eightAM},
			}
		}
		h.patient("pt-forgot", grants)
		h.patient("pt-took", grants)
		d := h.dispatcher(h.sender)
		if got := h.runAll(d); got != 2 {
			t.Fatalf("08:00: claimed %d, want 2 dose reminders", got)
		}
		occ := store.Reminder{PatientID: "pt-took", Kind: store.ReminderDose, RefID: "ds-1", Occurrence: eightAM}.OccurrenceID()
		if err := h.st.RecordDose(ctx, store.DoseRecord{PatientID: "pt-took", OccurrenceID: occ, Occurrence: eightAM, Outcome: store.DoseTaken,
			RecordedBy: "pt-took", RecordedAt: eightAM.Add(5 * time.Minute)}, 100); err != nil {
			t.Fatal(err)
		}
		h.clock.Set(eightAM.Add(59 * time.Minute))
		h.runAll(d)
		if n := len(h.shown()["tok-cg-alerts"]); n != 0 {
			t.Fatalf("caregiver alerted before the 60-minute window ended")
		}
		for _, at := range []time.Duration{60 * time.Minute, 62 * time.Minute, 3 * time.Hour} {
			h.clock.Set(eightAM.Add(at))
			h.runAll(d)
		}
		shown := h.shown()
		if got := shown["tok-cg-alerts"]; len(got) != 1 || sum(got) != 1 {
			t.Fatalf("caregiver with missed-dose alerts got %v, want one alert (for pt-forgot only)", got)
		}
		if got := shown["tok-cg-view"]; len(got) != 0 {
			t.Fatalf("caregiver without the scope got %v", got)
		}
		for _, r := range h.fake.Received() {
			if r.Token == "tok-cg-alerts" && (r.Data["patient_id"] != "pt-forgot" || strings.Contains(r.Body, "Lisinopril")) {
				t.Fatalf("alert %+v: want pt-forgot's, without the medicine's name", r)
			}
		}
	})
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestPushTextNamesMedicineOnlyWithOptIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		h.patient("pt-private")
		h.patient("pt-optin", func(p *store.Patient) { p.PushNamesMedicine = true })
		h.runAll(h.dispatcher(h.sender))
		for _, r := range h.fake.Received() {
			named := strings.Contains(r.Title+r.Body, "Lisinopril")
			if want := r.Token == "tok-pt-optin"; named != want {
				t.Errorf("push to %s: %q / %q; medicine named = %v, want %v", r.Token, r.Title, r.Body, named, want)
			}
			for k, v := range r.Data {
				if strings.Contains(v, "Lisinopril") || !strings.HasSuffix(k, "id") && k != "kind" {
					t.Errorf("data %s=%q: want ids only", k, v)
				}
			}
		}
		if len(h.fake.Received()) != 2 {
			t.Fatalf("sent %d pushes, want 2", len(h.fake.Received()))
		}
	})
}

func TestUnregisteredTokenIsDeletedAndOtherDevicesServed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		h.patient("pt-1", func(p *store.Patient) {
			p.Devices = append(p.Devices, store.Device{ID: "dv-old", FCMToken: "gone-old-phone", Platform: "ios"})
		})
		h.runAll(h.dispatcher(h.sender))
		pt, err := h.st.GetPatient(t.Context(), "pt-1")
		if err != nil {
			t.Fatal(err)
		}
		if len(pt.Devices) != 1 || pt.Devices[0].ID != "dv-pt-1" {
			t.Fatalf("devices after UNREGISTERED: %+v, want only the live one", pt.Devices)
		}
		if got := h.shown()["tok-pt-1"]; len(got) != 1 {
			t.Fatalf("live device shows %v", got)
		}
		if hist, _ := h.st.ListNotifications(t.Context(), "pt-1", 10); len(hist) != 1 {
			t.Fatalf("history %v, want the reminder", hist)
		}
	})
}

// TestBadMessageKeepsThePhone: FCM answers INVALID_ARGUMENT for two
// phones, once about the message (a payload bug) and once naming the
// token. Only the phone whose token FCM called invalid is deleted; the
// other keeps its device and gets tomorrow's reminder.
func TestBadMessageKeepsThePhone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		h.patient("pt-payload")
		h.patient("pt-badtoken")
		h.patient("pt-fine")
		h.fake.FailToken("tok-pt-payload", fcmfake.InvalidArgument)
		h.fake.FailToken("tok-pt-badtoken", fcmfake.InvalidToken)
		h.runAll(h.dispatcher(h.sender))
		for id, keep := range map[string]bool{"pt-payload": true, "pt-badtoken": false, "pt-fine": true} {
			pt, err := h.st.GetPatient(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if kept := len(pt.Devices) == 1; kept != keep {
				t.Errorf("%s: devices %+v; want kept = %v", id, pt.Devices, keep)
			}
		}
		h.fake.Reset()
		h.clock.Set(eightAM.Add(24 * time.Hour))
		h.runAll(h.dispatcher(h.sender))
		if got := h.shown(); len(got["tok-pt-payload"]) != 1 || len(got["tok-pt-badtoken"]) != 0 {
			t.Fatalf("next day's pushes %v: want the phone refused over a bad message to get its reminder", got)
		}
	})
}

// flakySettle fails the first fails settle attempts with err.
type flakySettle struct {
	store.Store
	err   error
	fails atomic.Int32
}

func (f *flakySettle) SettleReminders(ctx context.Context, shard int, s store.Settlement) error {
	if f.fails.Add(-1) >= 0 {
		return f.err
	}
	return f.Store.SettleReminders(ctx, shard, s)
}

// TestSettleIsRetriedUntilTheStoreAnswers: the pushes went out, then the
// store is unavailable for four settle attempts: the batch settles on the
// fifth, so nothing comes back to be sent again. A store that answers with
// a real error is given up on after a few attempts (the lease then brings
// the batch back rather than holding it forever).
func TestSettleIsRetriedUntilTheStoreAnswers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		h.patient("pt-1")
		flaky := &flakySettle{Store: h.st, err: fmt.Errorf("settle: %w", store.ErrUnavailable)}
		flaky.fails.Store(4)
		reg := prometheus.NewRegistry()
		d, err := dispatch.New(dispatch.Config{Store: flaky, Sender: h.sender, Logger: slog.New(slog.DiscardHandler), Now: h.clock.Now,
			Lease: 30 * time.Second, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		h.runAll(d)
		if n := counter(t, reg, dispatch.MetricSettleRetries, nil); n != 4 {
			t.Fatalf("settle retried %v times, want 4", n)
		}
		h.clock.Set(eightAM.Add(time.Hour))
		if got := h.runAll(d); got != 0 || h.fake.Accepted() != 1 {
			t.Fatalf("an hour later: claimed %d, FCM accepted %d in all; want the batch settled and pushed once", got, h.fake.Accepted())
		}

		h.patient("pt-2", func(p *store.Patient) { p.DoseSchedules[0].TimesOfDay = []int{10 * 60} })
		flaky.err = errors.New("ERR script failed")
		flaky.fails.Store(100)
		h.clock.Set(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)) // 10:00 in New York
		for sh := range h.st.ReminderShards() {
			if _, err := d.RunOnce(t.Context(), sh); err != nil && !strings.Contains(err.Error(), "ERR script failed") {
				t.Fatalf("RunOnce: %v", err)
			}
		}
		if left := flaky.fails.Load(); left != 97 {
			t.Fatalf("%d settle attempts on a store that answered with an error, want 3", 100-left)
		}
	})
}

// TestFCMOutageLosesNothing: FCM answers INTERNAL to everything for a
// while; the reminders are moved one lease later and are delivered once
// FCM recovers.
func TestFCMOutageLosesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		for i := range 5 {
			h.patient(fmt.Sprintf("pt-%d", i))
		}
		h.fake.FailNext(1000, fcmfake.Internal, 0)
		d := h.dispatcher(h.sender)
		h.runAll(d)
		if h.fake.Accepted() != 0 {
			t.Fatal("FCM accepted during the outage")
		}
		h.fake.Reset()
		h.clock.Set(eightAM.Add(31 * time.Second))
		if got := h.runAll(d); got != 5 {
			t.Fatalf("after the lease: claimed %d, want all 5 back", got)
		}
		if got := h.fake.Accepted(); got != 5 {
			t.Fatalf("delivered %d, want 5", got)
		}
	})
}

func TestRefillReminderQuietHoursAndNewFill(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		ctx := t.Context()
		pt := h.patient("pt-1", func(p *store.Patient) {
			p.DoseSchedules = nil
			p.QuietHours = store.QuietHours{StartMinute: 9 * 60, EndMinute: 12 * 60} // 09:00-12:00 local
			p.Fills = []store.Fill{{ID: "fl-1", MedicationID: "md-1", FilledOn: store.Date{Year: 2026, Month: 2, Day: 10}, DaysSupply: 30}}
		})
		// Supply runs through Mar 11; the reminder is due Mar 5 at 10:00
		// local, inside quiet hours.
		planner := dispatch.NewPlanner(h.st, dispatch.PlannerConfig{})
		if err := planner.RefillChanged(ctx, pt, "md-1", nil, eightAM); err != nil {
			t.Fatal(err)
		}
		d := h.dispatcher(h.sender)
		tenAM := time.Date(2026, 3, 5, 15, 0, 0, 0, time.UTC)
		h.clock.Set(tenAM)
		if got := h.runAll(d); got != 1 || h.fake.Accepted() != 0 {
			t.Fatalf("10:00 in quiet hours: claimed %d, sent %d; want it claimed and deferred", got, h.fake.Accepted())
		}
		h.clock.Set(tenAM.Add(2*time.Hour - time.Second))
		if h.runAll(d); h.fake.Accepted() != 0 {
			t.Fatal("sent before quiet hours ended")
		}
		h.clock.Set(tenAM.Add(2 * time.Hour))
		if h.runAll(d); h.fake.Accepted() != 1 {
			t.Fatalf("at 12:00: sent %d, want the refill reminder", h.fake.Accepted())
		}

		// An early refill on Mar 6 moves the next reminder to Apr 4 and
		// cancels nothing pending; a fill recorded before the reminder
		// fires cancels it.
		before := pt.Fills
		pt.Fills = append(pt.Fills, store.Fill{ID: "fl-2", MedicationID: "md-1", FilledOn: store.Date{Year: 2026, Month: 3, Day: 6}, DaysSupply: 30})
		if _, err := h.st.UpdatePatient(ctx, pt.ID, func(p store.Patient) (store.Patient, error) { p.Fills = pt.Fills; return p, nil }); err != nil {
			t.Fatal(err)
		}
		if err := planner.RefillChanged(ctx, pt, "md-1", before, tenAM.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		before = pt.Fills
		pt.Fills = append(pt.Fills, store.Fill{ID: "fl-3", MedicationID: "md-1", FilledOn: store.Date{Year: 2026, Month: 3, Day: 20}, DaysSupply: 90})
		if _, err := h.st.UpdatePatient(ctx, pt.ID, func(p store.Patient) (store.Patient, error) { p.Fills = pt.Fills; return p, nil }); err != nil {
			t.Fatal(err)
		}
		if err := planner.RefillChanged(ctx, pt, "md-1", before, time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		h.clock.Set(time.Date(2026, 4, 5, 12, 0, 0, 0, time.UTC))
		if got := h.runAll(d); got != 0 {
			t.Fatalf("Apr 5: claimed %d; the reminder from the superseded fill should be cancelled", got)
		}
		// Through Mar 11 + 30 + 90 = Jul 9: the reminder fires Jul 3.
		h.clock.Set(time.Date(2026, 7, 3, 16, 0, 0, 0, time.UTC)) // 12:00 EDT, after quiet hours
		if got := h.runAll(d); got != 1 || h.fake.Accepted() != 2 {
			t.Fatalf("Jul 3: claimed %d, sent %d in all; want the new refill reminder", got, h.fake.Accepted())
		}
	})
}

// TestRunDrainsOnShutdown: when Run's context ends while a batch is being
// sent, the batch still finishes (history and acknowledgement).
func TestRunDrainsOnShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, h *harness) {
		h.patient("pt-1")
		h.fake.SetLatency(300 * time.Millisecond)
		d := h.dispatcher(h.sender)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		time.Sleep(100 * time.Millisecond) // the claim is immediate; the send takes 300ms
		cancel()
		if n := h.fake.Accepted(); n != 0 {
			t.Fatalf("the send finished before shutdown began (%d accepted); the test needs it in flight", n)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		hist, err := h.st.ListNotifications(t.Context(), "pt-1", 10)
		if err != nil || len(hist) != 1 {
			t.Fatalf("after shutdown: history %v, %v; want the batch in flight finished", hist, err)
		}
		h.clock.Set(eightAM.Add(time.Minute))
		if got := h.runAll(d); got != 0 {
			t.Fatalf("claimed %d after a drained shutdown; want the batch acknowledged", got)
		}
	})
}

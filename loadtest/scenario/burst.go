package scenario

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/loadtest/seed"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

// FCMProject is the Firebase project id the load test's mtmd instances and
// raw SDK sends use with the fake FCM.
const FCMProject = "mtm-load-test"

// FCM is the local fake FCM (notifications/fcmfake) the mtmd instances
// push to, served from this process, with a Firebase SDK client for the raw
// SendEach baseline. It keeps what it accepts, with accept times, until
// StopKeeping.
type FCM struct {
	Fake   *fcmfake.Server
	URL    string
	srv    *http.Server
	client *messaging.Client
}

// StartFCM serves a fake FCM on a free loopback port.
func StartFCM(ctx context.Context) (*FCM, error) {
	fake := fcmfake.New(fcmfake.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("scenario.StartFCM: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	sender, err := push.NewFCM(ctx, push.FCMConfig{ProjectID: FCMProject, Endpoint: url, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("scenario.StartFCM: %w", err)
	}
	return &FCM{Fake: fake, URL: url, srv: srv, client: sender.Client()}, nil
}

// MTMDFlags are the mtmd flags that make it push to this fake.
func (f *FCM) MTMDFlags() []string {
	return []string{"--push", "fcm", "--fcm-project", FCMProject, "--fcm-endpoint", f.URL}
}

// StopKeeping makes the fake only count what it accepts from now on.
func (f *FCM) StopKeeping() { f.Fake.CountOnly() }

// Close stops the server.
func (f *FCM) Close() { f.srv.Close() }

// BurstPlan is an 8:00 reminder burst put in the store's due-time index:
// Reminders dose reminders, all due at Due, whose occurrences (OccurrenceID)
// are the patients' 8:00 doses two days ahead.
type BurstPlan struct {
	Due       time.Time
	Reminders int
	// occurrences are the occurrence ids the pushes carry.
	occurrences map[string]bool
	// ScheduleSeconds is how long writing them to the store took.
	ScheduleSeconds float64
}

// BurstReminders returns up to n dose reminders of the seeded patients
// (their 8:00 local doses two days after now, one per dose schedule), each
// due at due, grouped by patient.
func BurstReminders(pop seed.Population, n int, now, due time.Time) ([][]store.Reminder, error) {
	var out [][]store.Reminder
	total := 0
	for _, p := range pop.Patients {
		if total >= n {
			break
		}
		loc, err := time.LoadLocation(p.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("scenario.BurstReminders: %w", err)
		}
		// Two days ahead: the occurrences the dispatchers schedule next
		// (later doses, missed-dose checks) stay in the future, so they
		// add no work to the phases that follow.
		y, m, d := now.In(loc).AddDate(0, 0, 2).Date()
		occ := time.Date(y, m, d, 8, 0, 0, 0, loc)
		var rs []store.Reminder
		for _, s := range p.DoseSchedules {
			if total >= n {
				break
			}
			rs = append(rs, store.Reminder{PatientID: p.ID, Kind: store.ReminderDose, RefID: s, Occurrence: occ, DueAt: due})
			total++
		}
		if len(rs) > 0 {
			out = append(out, rs)
		}
	}
	if total == 0 {
		return nil, errors.New("scenario.BurstReminders: no dose schedules to remind")
	}
	return out, nil
}

// ScheduleBurst writes the reminders of BurstReminders through the store
// (eight writers) and returns the plan to await. The reminders are due at
// the first whole second at or after due, as real ones are (an occurrence
// is a whole second: the 8:00 dose is due at 8:00:00.000); plan.Due says
// when.
func ScheduleBurst(ctx context.Context, st store.Store, pop seed.Population, n int, now, due time.Time) (BurstPlan, error) {
	if t := due.Truncate(time.Second); t.Before(due) {
		due = t.Add(time.Second)
	}
	groups, err := BurstReminders(pop, n, now, due)
	if err != nil {
		return BurstPlan{}, err
	}
	plan := BurstPlan{Due: due, occurrences: map[string]bool{}}
	for _, g := range groups {
		for _, r := range g {
			plan.occurrences[r.OccurrenceID()] = true
			plan.Reminders++
		}
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(groups) || ctx.Err() != nil {
					return
				}
				if err := st.ScheduleReminders(ctx, groups[i][0].PatientID, groups[i], nil); err != nil {
					errs[w] = fmt.Errorf("scenario.ScheduleBurst: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	plan.ScheduleSeconds = time.Since(start).Seconds()
	return plan, errors.Join(append(errs, ctx.Err())...)
}

// BurstResult is what the 8:00 reminder burst measured: the mtmd
// instances' own dispatchers pushing, through the Firebase SDK, to the
// fake FCM in this process, which timed each accept.
type BurstResult struct {
	// Reminders were due at once; Pushes is how many of their pushes the
	// fake FCM accepted (one per reminder: each patient has one phone),
	// Distinct how many different reminders they were for.
	Reminders int   `json:"reminders"`
	Pushes    int64 `json:"pushes"`
	Distinct  int   `json:"distinct"`
	// Lateness of the accepts after the due time: the first, the median,
	// p99 and the last (the drain time).
	FirstMs float64 `json:"first_ms"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	LastMs  float64 `json:"last_ms"`
	// DrainRate is reminders per second from the due time to the last
	// accept.
	DrainRate float64 `json:"drain_per_sec"`
	// RawSDKRate is the same number of messages sent straight through the
	// Firebase SDK's SendEach from this process (RawSDKRate), and Ratio
	// DrainRate / RawSDKRate.
	RawSDKRate float64 `json:"raw_sdk_per_sec"`
	Ratio      float64 `json:"drain_vs_raw_sdk"`
}

// AwaitBurst waits until the fake FCM has accepted as many pushes as plan
// has reminders (then a quarter second more, to see a duplicate), or until
// no push arrived for stall, and measures the burst from what it accepted.
// A burst that stalls part-way returns its result with fewer pushes than
// reminders, not an error.
func (f *FCM) AwaitBurst(ctx context.Context, plan BurstPlan, stall time.Duration) BurstResult {
	count := func() int64 { return f.Fake.Accepted() }
	base := int64(0) // the fake is Reset before the burst
	last, lastChange := count()-base, time.Now()
	for ctx.Err() == nil {
		got := count() - base
		if got != last {
			last, lastChange = got, time.Now()
		}
		if got >= int64(plan.Reminders) && time.Since(lastChange) > 250*time.Millisecond {
			break
		}
		if time.Since(lastChange) > stall && time.Now().After(plan.Due) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := BurstResult{Reminders: plan.Reminders}
	seen := map[string]bool{}
	var late []time.Duration
	for _, m := range f.Fake.Received() {
		if m.Data["kind"] != string(store.ReminderDose) || !plan.occurrences[m.Data["occurrence_id"]] {
			continue
		}
		res.Pushes++
		seen[m.Data["occurrence_id"]] = true
		late = append(late, time.Unix(0, m.ReceivedAtUnix).Sub(plan.Due))
	}
	res.Distinct = len(seen)
	if len(late) == 0 {
		return res
	}
	slices.Sort(late)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(q float64) time.Duration { return late[min(len(late)-1, int(q*float64(len(late))))] }
	res.FirstMs, res.P50Ms, res.P99Ms, res.LastMs = ms(late[0]), ms(at(0.50)), ms(at(0.99)), ms(late[len(late)-1])
	if late[len(late)-1] > 0 {
		res.DrainRate = float64(res.Distinct) / late[len(late)-1].Seconds()
	}
	return res
}

// RawSDKRate sends n dose-reminder-shaped messages through the SDK's
// SendEach in batches of 500 from `workers` goroutines to the fake and
// returns messages/s. The fake forgets them (Reset) afterwards.
func (f *FCM) RawSDKRate(ctx context.Context, n, workers int) (float64, error) {
	const batch = 500
	ttl := time.Hour
	mk := func(i int) *messaging.Message {
		key := fmt.Sprintf("d.raw.%d", i)
		return &messaging.Message{
			Token:        fmt.Sprintf("load-test-token-raw-%d", i),
			Notification: &messaging.Notification{Title: "Medication reminder", Body: "You have a medication reminder"},
			Data:         map[string]string{"kind": "dose", "patient_id": "pt_raw", "occurrence_id": key},
			Android: &messaging.AndroidConfig{CollapseKey: key, Priority: "high", TTL: &ttl,
				Notification: &messaging.AndroidNotification{Tag: key, ChannelID: "reminders"}},
			APNS: &messaging.APNSConfig{
				Headers: map[string]string{"apns-priority": "10", "apns-push-type": "alert", "apns-collapse-id": key},
				Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Sound: "default", ThreadID: "dose"}},
			},
		}
	}
	defer f.Fake.Reset()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range max(workers, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				from := int(next.Add(batch) - batch)
				if from >= n {
					return
				}
				msgs := make([]*messaging.Message, 0, batch)
				for i := from; i < min(from+batch, n); i++ {
					msgs = append(msgs, mk(i))
				}
				resp, err := f.client.SendEach(ctx, msgs)
				if err != nil {
					failed.Add(int64(len(msgs)))
					continue
				}
				failed.Add(int64(resp.FailureCount))
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("scenario.RawSDKRate: %d of %d sends failed", f, n)
	}
	return float64(n) / secs, nil
}

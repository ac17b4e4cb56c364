package scenario

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/loadtest/procs"
	"github.com/mtmapp/mtm/loadtest/seed"
	"github.com/mtmapp/mtm/notifications/dispatch"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

// BurstResult is what the 8:00 reminder burst measured.
type BurstResult struct {
	// Reminders were due in the same second; Pushes is how many the fake
	// FCM accepted while they drained.
	Reminders int     `json:"reminders"`
	Pushes    int64   `json:"pushes"`
	DrainSec  float64 `json:"drain_seconds"`
	DrainRate float64 `json:"drain_per_sec"`
	// RawSDKRate is the same number of messages sent straight through the
	// Firebase SDK's SendEach, batches of 500, with as many concurrent
	// senders as the dispatcher has workers, to the same fake FCM.
	RawSDKRate float64 `json:"raw_sdk_per_sec"`
	Ratio      float64 `json:"drain_vs_raw_sdk"`
	// CPUPerReminderUs is this process's CPU (dispatcher, store client,
	// SDK and fake FCM together) per reminder while draining.
	CPUPerReminderUs float64 `json:"cpu_per_reminder_us"`
}

// Burst puts up to n dose reminders of the seeded patients (their 8:00
// doses, one per dose schedule) in st's due-time index, all due at 8:00 New
// York time two days after now, and measures how fast a dispatcher (running in
// this process, on st) drains them to a local fake FCM through the real
// Firebase SDK, against the raw SDK rate measured just before. The
// dispatcher's clock is pinned to that 8:00 plus the real elapsed time.
func Burst(ctx context.Context, st store.Store, pop seed.Population, n int, now time.Time) (BurstResult, error) {
	fake := fcmfake.New(fcmfake.Options{})
	fake.CountOnly()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return BurstResult{}, fmt.Errorf("scenario.Burst: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	logger := slog.New(slog.DiscardHandler)
	sender, err := push.NewFCM(ctx, push.FCMConfig{ProjectID: "mtm-load-test", Endpoint: "http://" + ln.Addr().String(), Logger: logger})
	if err != nil {
		return BurstResult{}, fmt.Errorf("scenario.Burst: %w", err)
	}
	workers := min(st.ReminderShards(), 16)

	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		return BurstResult{}, fmt.Errorf("scenario.Burst: %w", err)
	}
	// Two days ahead: the occurrences the dispatcher schedules next (later
	// doses, missed-dose checks) stay in the future for any dispatcher on a
	// real clock (an mtmd under test), so they cannot add work to the
	// phases that follow.
	y, m, d := now.In(ny).AddDate(0, 0, 2).Date()
	eight := time.Date(y, m, d, 8, 0, 0, 0, ny)
	due, err := dueReminders(ctx, st, pop, n, y, m, d, eight)
	if err != nil {
		return BurstResult{}, err
	}
	res := BurstResult{Reminders: due}
	if due == 0 {
		return res, errors.New("scenario.Burst: no dose schedules to remind")
	}

	raw, err := rawSDKRate(ctx, sender.Client(), due, workers)
	if err != nil {
		return res, err
	}
	res.RawSDKRate = raw

	base := fake.Accepted()
	start := time.Now()
	disp, err := dispatch.New(dispatch.Config{
		Store: st, Sender: sender, Logger: logger, Workers: workers, Poll: 20 * time.Millisecond,
		Now: func() time.Time { return eight.Add(time.Since(start)) },
	})
	if err != nil {
		return res, fmt.Errorf("scenario.Burst: %w", err)
	}
	cpu0, _ := procs.CPUTimeOf(os.Getpid())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- disp.Run(runCtx) }()
	last, lastChange := int64(0), time.Now()
	var drained time.Duration
	for {
		got := fake.Accepted() - base
		if got != last {
			last, lastChange = got, time.Now()
		}
		if got >= int64(due) {
			drained = time.Since(start)
			break
		}
		if time.Since(lastChange) > 30*time.Second || ctx.Err() != nil {
			drained = lastChange.Sub(start)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cpu1, _ := procs.CPUTimeOf(os.Getpid())
	stop()
	if err := <-done; err != nil {
		return res, fmt.Errorf("scenario.Burst: dispatcher: %w", err)
	}
	res.Pushes = fake.Accepted() - base
	res.DrainSec = drained.Seconds()
	if res.DrainSec > 0 {
		res.DrainRate = float64(min(res.Pushes, int64(due))) / res.DrainSec
	}
	if res.RawSDKRate > 0 {
		res.Ratio = res.DrainRate / res.RawSDKRate
	}
	res.CPUPerReminderUs = (cpu1 - cpu0).Seconds() * 1e6 / float64(due)
	return res, nil
}

// dueReminders schedules the 8:00 (local) dose of every dose schedule of
// the population on date y-m-d, due at `at`, up to n; it returns how many.
func dueReminders(ctx context.Context, st store.Store, pop seed.Population, n int, y int, m time.Month, d int, at time.Time) (int, error) {
	type job struct {
		patient string
		rs      []store.Reminder
	}
	var jobs []job
	total := 0
	for _, p := range pop.Patients {
		if total >= n {
			break
		}
		loc, err := time.LoadLocation(p.TimeZone)
		if err != nil {
			return 0, fmt.Errorf("scenario.Burst: %w", err)
		}
		occ := time.Date(y, m, d, 8, 0, 0, 0, loc)
		var rs []store.Reminder
		for _, s := range p.DoseSchedules {
			if total >= n {
				break
			}
			rs = append(rs, store.Reminder{PatientID: p.ID, Kind: store.ReminderDose, RefID: s, Occurrence: occ, DueAt: at})
			total++
		}
		jobs = append(jobs, job{p.ID, rs})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range errs {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) || ctx.Err() != nil {
					return
				}
				if err := st.ScheduleReminders(ctx, jobs[i].patient, jobs[i].rs, nil); err != nil {
					errs[w] = fmt.Errorf("scenario.Burst: scheduling: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return total, errors.Join(append(errs, ctx.Err())...)
}

// rawSDKRate sends n dose-reminder-shaped messages through client.SendEach
// in batches of 500 from `workers` goroutines and returns messages/s.
func rawSDKRate(ctx context.Context, client *messaging.Client, n, workers int) (float64, error) {
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
				resp, err := client.SendEach(ctx, msgs)
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
		return 0, fmt.Errorf("scenario.Burst: raw SDK: %d of %d sends failed", f, n)
	}
	return float64(n) / secs, nil
}

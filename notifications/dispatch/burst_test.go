package dispatch_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
	"github.com/mtmapp/mtm/notifications/dispatch"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

var (
	burstSize    = flag.Int("burst", 100000, "reminders due in the same second in BenchmarkBurst")
	burstWorkers = flag.Int("burst-workers", 0, "dispatcher workers in BenchmarkBurst (0: the default)")
	burstProfile = flag.String("burst-cpuprofile", "", "write a CPU profile of the drain alone (not the seeding or the raw loops) to this file")
)

// BenchmarkBurst is the 8:00 burst: -burst reminders (default 100,000)
// due in the same second on a private Redis, drained by one dispatcher
// (default configuration) through the real Firebase SDK to the local FCM
// server. In the same run it measures the raw rate of the same SDK client
// sending the same FCM messages with a plain SendEach loop (batches of 500,
// no store, no scheduler; once before and once after the drain, averaged),
// and the Redis memory one scheduled reminder takes. Run it with
//
//	go test ./notifications/dispatch -run '^$' -bench Burst -benchtime 1x [-burst 100000]
func BenchmarkBurst(b *testing.B) {
	n := *burstSize
	ctx := context.Background()
	addr, _ := redistest.StartServer(b)
	client := redis.NewUniversalClient(redisstore.Config{Addrs: []string{addr}}.UniversalOptions(5 * time.Second))
	b.Cleanup(func() { client.Close() })
	st, err := redisstore.New(ctx, client, redisstore.Options{KEK: redistest.KEK(), Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	fake := fcmfake.New(fcmfake.Options{})
	fake.CountOnly()
	srv := httptest.NewServer(fake)
	b.Cleanup(srv.Close)
	sender, err := push.NewFCM(ctx, push.FCMConfig{ProjectID: "mtm-bench", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}

	due := time.Date(2026, 3, 2, 13, 0, 0, 0, time.UTC) // 08:00 in New York
	pid := func(i int) string { return fmt.Sprintf("pt_%020d", i) }
	parallel(b, n, func(i int) error {
		return st.CreatePatient(ctx, store.Patient{ID: pid(i), PharmacyID: "ph_bench", TimeZone: "America/New_York",
			Medications:   []store.Medication{{ID: "md_metformin00000000000", Name: "Metformin", Version: 1}},
			Devices:       []store.Device{{ID: "dv_" + strconv.Itoa(i), FCMToken: "fcm-token-" + strconv.Itoa(i), Platform: "android"}},
			DoseSchedules: []store.DoseSchedule{{ID: "ds_morning0000000000000", MedicationID: "md_metformin00000000000", TimesOfDay: []int{8 * 60}}},
		})
	})
	before := usedMemory(b, client)
	parallel(b, n, func(i int) error {
		r := store.Reminder{PatientID: pid(i), Kind: store.ReminderDose, RefID: "ds_morning0000000000000", Occurrence: due, DueAt: due}
		return st.ScheduleReminders(ctx, r.PatientID, []store.Reminder{r}, nil)
	})
	perReminder := float64(usedMemory(b, client)-before) / float64(n)

	raw := func() float64 {
		msgs := make([]*messaging.Message, 0, push.MaxBatch)
		start := time.Now()
		for i := 0; i < n; i += push.MaxBatch {
			msgs = msgs[:0]
			for j := i; j < min(i+push.MaxBatch, n); j++ {
				occ := "d.ds_morning0000000000000.tbw1c0"
				msgs = append(msgs, push.FCMMessage(push.Message{Token: "fcm-token-" + strconv.Itoa(j), DeviceID: "dv_" + strconv.Itoa(j), OwnerID: pid(j),
					Kind: store.ReminderDose, Title: "Medication reminder", Body: "You have a medication reminder.",
					Data: map[string]string{"kind": "dose", "patient_id": pid(j), "occurrence_id": occ, "dose_schedule_id": "ds_morning0000000000000"}, CollapseKey: occ}, due))
			}
			res, err := sender.Client().SendEach(ctx, msgs)
			if err != nil || res.FailureCount > 0 {
				b.Fatalf("raw SendEach: %v, %d failures", err, res.FailureCount)
			}
		}
		return float64(n) / time.Since(start).Seconds()
	}
	rawCPU0 := storetest.ProcessCPU(b)
	raw1 := raw()
	rawCPU := storetest.ProcessCPU(b) - rawCPU0

	clk := &clock{now: due.Add(time.Second)}
	d, err := dispatch.New(dispatch.Config{Store: st, Sender: sender, Logger: slog.New(slog.DiscardHandler), Now: clk.Now, Poll: 5 * time.Millisecond,
		Workers: *burstWorkers})
	if err != nil {
		b.Fatal(err)
	}
	base := fake.Accepted()
	if *burstProfile != "" {
		f, err := os.Create(*burstProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	cpu0, redisCPU0 := storetest.ProcessCPU(b), redistest.CPUTime(b, client)
	b.ResetTimer()
	runCtx, cancel := context.WithCancel(ctx)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	for fake.Accepted()-base < int64(n) {
		time.Sleep(2 * time.Millisecond)
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("drained %d of %d in 10 minutes", fake.Accepted()-base, n)
		}
	}
	drain := time.Since(start)
	cancel()
	<-done
	b.StopTimer()
	cpu, rcpu := storetest.ProcessCPU(b)-cpu0, redistest.CPUTime(b, client)-redisCPU0
	if *burstProfile != "" {
		pprof.StopCPUProfile()
	}
	rate := float64(n) / drain.Seconds()
	rawCPU0 = storetest.ProcessCPU(b)
	raw2 := raw()
	rawCPU += storetest.ProcessCPU(b) - rawCPU0
	rawRate := (raw1 + raw2) / 2

	// Everything was acknowledged: nothing is left due.
	left := 0
	for sh := range st.ReminderShards() {
		rs, err := st.ClaimDueReminders(ctx, sh, due.Add(time.Hour), time.Minute, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			if r.Occurrence.Equal(due) {
				left++
			}
		}
	}
	if left > 0 {
		b.Fatalf("%d reminders still due after the drain", left)
	}
	b.ReportMetric(drain.Seconds(), "drain-s")
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(rawRate, "raw-msgs/s")
	b.ReportMetric(rate/rawRate, "ratio")
	b.ReportMetric(perReminder, "redis-B/reminder")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "go-cpu-µs/reminder")
	b.ReportMetric(float64(rcpu.Microseconds())/float64(n), "redis-cpu-µs/reminder")
	b.ReportMetric(float64(rawCPU.Microseconds())/float64(2*n), "raw-cpu-µs/msg")
	b.Logf("%d reminders due at once: drained in %v = %.0f msgs/s; raw SendEach loop %.0f and %.0f msgs/s; ratio %.2f (target ≥ 0.75); Redis %.0f bytes per scheduled reminder (target ≤ 150); "+
		"CPU per reminder during the drain: %.0f µs in this process (dispatcher, SDK and fake FCM), %.0f µs in Redis; raw loop %.0f µs per message",
		n, drain.Round(time.Millisecond), rate, raw1, raw2, rate/rawRate, perReminder, float64(cpu.Microseconds())/float64(n), float64(rcpu.Microseconds())/float64(n), float64(rawCPU.Microseconds())/float64(2*n))
}

// parallel runs fn(0..n-1) on 32 goroutines, failing on the first error.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

func infoField(b *testing.B, c redis.UniversalClient, section, field string) string {
	b.Helper()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	b.Fatalf("no %s in INFO %s", field, section)
	return ""
}

func usedMemory(b *testing.B, c redis.UniversalClient) int64 {
	b.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no used_memory")
	return 0
}

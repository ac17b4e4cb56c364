package push_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
)

// fakeTime is the sender's clock and sleep: sleeping advances the clock at
// once and is recorded, so backoff is asserted without waiting.
type fakeTime struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (f *fakeTime) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}
func (f *fakeTime) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// newSender starts a fake FCM and an FCM sender (the real SDK) pointed at it.
func newSender(t *testing.T) (*push.FCM, *fcmfake.Server, *fakeTime) {
	t.Helper()
	fake := fcmfake.New(fcmfake.Options{UnregisteredPrefix: "gone-"})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	ft := &fakeTime{now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	s, err := push.NewFCM(t.Context(), push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler),
		Now: ft.Now, Sleep: ft.Sleep, Rand: func() float64 { return 0.5 }, MaxAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	return s, fake, ft
}

func messages(n int, kind store.ReminderKind) []push.Message {
	var out []push.Message
	for i := range n {
		out = append(out, push.Message{Token: fmt.Sprintf("tok-%d", i), DeviceID: fmt.Sprintf("dv-%d", i), OwnerID: "pt-1", Kind: kind,
			Title: "Reminder", Body: "You have a medication reminder", Data: map[string]string{"occurrence_id": fmt.Sprintf("d.ds-1.%d", i)},
			CollapseKey: fmt.Sprintf("d.ds-1.%d", i)})
	}
	return out
}

func outcomes(rs []push.Result) map[push.Outcome]int {
	m := map[push.Outcome]int{}
	for _, r := range rs {
		m[r.Outcome]++
	}
	return m
}

func TestFCMDeliversWithPerKindStyle(t *testing.T) {
	s, fake, _ := newSender(t)
	msgs := append(messages(2, store.ReminderDose), messages(1, store.ReminderRefill)...)
	msgs[2].Token = "tok-refill"
	res := s.Send(t.Context(), msgs)
	if o := outcomes(res); o[push.Sent] != 3 {
		t.Fatalf("outcomes %v, want 3 sent", o)
	}
	got := map[string]fcmfake.Received{}
	for _, r := range fake.Received() {
		got[r.Token] = r
	}
	dose, refill := got["tok-0"], got["tok-refill"]
	if dose.AndroidPrio != "high" || dose.AndroidTTL != "3600s" || dose.APNsHeaders["apns-priority"] != "10" {
		t.Errorf("dose reminder: android %s/%s, apns-priority %s; want high priority, 1h TTL", dose.AndroidPrio, dose.AndroidTTL, dose.APNsHeaders["apns-priority"])
	}
	if refill.AndroidPrio != "normal" || refill.AndroidTTL != "86400s" || refill.APNsHeaders["apns-priority"] != "5" {
		t.Errorf("refill reminder: android %s/%s, apns-priority %s; want normal priority, 24h TTL", refill.AndroidPrio, refill.AndroidTTL, refill.APNsHeaders["apns-priority"])
	}
	if dose.CollapseKey != "d.ds-1.0" || dose.Tag != "d.ds-1.0" || dose.APNsHeaders["apns-collapse-id"] != "d.ds-1.0" {
		t.Errorf("collapse key %q, tag %q, apns-collapse-id %q: want the occurrence id everywhere", dose.CollapseKey, dose.Tag, dose.APNsHeaders["apns-collapse-id"])
	}
	if dose.Data["occurrence_id"] != "d.ds-1.0" || dose.Body != "You have a medication reminder" {
		t.Errorf("payload %+v", dose)
	}
}

func TestFCMInjectedErrors(t *testing.T) {
	tests := []struct {
		name      string
		inject    func(f *fcmfake.Server)
		msgs      int
		tokens    map[int]string
		want      map[push.Outcome]int
		minSleep  time.Duration // the longest recorded wait must be at least this
		delivered int
	}{
		{"unregistered, mismatched and invalid tokens are reported for deletion", func(f *fcmfake.Server) {
			f.FailToken("tok-bad", fcmfake.InvalidToken)
			f.FailToken("tok-other-sender", fcmfake.SenderIDMismatch)
		}, 5, map[int]string{1: "gone-1", 2: "tok-bad", 3: "tok-other-sender"}, map[push.Outcome]int{push.Sent: 2, push.InvalidToken: 3}, 0, 2},
		{"a bad message is refused without blaming the device", func(f *fcmfake.Server) {
			f.FailNext(2, fcmfake.InvalidArgument, 0)
		}, 3, nil, map[push.Outcome]int{push.Sent: 1, push.Failed: 2}, 0, 1},
		{"quota exceeded pauses the sender for Retry-After, then sends everything", func(f *fcmfake.Server) {
			f.FailNext(3, fcmfake.QuotaExceeded, 7*time.Second)
		}, 10, nil, map[push.Outcome]int{push.Sent: 10}, 7 * time.Second, 10},
		{"quota exceeded without Retry-After pauses for the default", func(f *fcmfake.Server) {
			f.FailNext(1, fcmfake.QuotaExceeded, 0)
		}, 3, nil, map[push.Outcome]int{push.Sent: 3}, time.Minute, 3},
		// A Retry-After beyond the SDK's own 2-minute retry cap reaches the
		// sender, which honours it.
		{"unavailable honours a long Retry-After", func(f *fcmfake.Server) {
			f.FailNext(2, fcmfake.Unavailable, 5*time.Minute)
		}, 5, nil, map[push.Outcome]int{push.Sent: 5}, 5 * time.Minute, 5},
		{"internal errors back off and retry", func(f *fcmfake.Server) {
			f.FailNext(4, fcmfake.Internal, 0)
		}, 4, nil, map[push.Outcome]int{push.Sent: 4}, 250 * time.Millisecond, 4},
		{"still failing after the last attempt is left for a later retry", func(f *fcmfake.Server) {
			f.FailNext(100, fcmfake.Internal, 0)
		}, 3, nil, map[push.Outcome]int{push.Retry: 3}, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, fake, ft := newSender(t)
			tc.inject(fake)
			msgs := messages(tc.msgs, store.ReminderDose)
			for i, tok := range tc.tokens {
				msgs[i].Token = tok
			}
			res := s.Send(t.Context(), msgs)
			if o := outcomes(res); fmt.Sprint(o) != fmt.Sprint(tc.want) {
				t.Fatalf("outcomes %v, want %v", o, tc.want)
			}
			for i, r := range res {
				if tok := msgs[i].Token; (tok == "gone-1" || tok == "tok-bad" || tok == "tok-other-sender") != (r.Outcome == push.InvalidToken) {
					t.Errorf("message to %s: outcome %v (%s)", tok, r.Outcome, r.Code)
				}
			}
			longest := time.Duration(0)
			for _, d := range ft.Sleeps() {
				longest = max(longest, d)
			}
			if longest < tc.minSleep {
				t.Errorf("longest wait %v, want at least %v (waits %v)", longest, tc.minSleep, ft.Sleeps())
			}
			if n := fake.Accepted(); n != int64(tc.delivered) {
				t.Errorf("fake FCM accepted %d messages, want %d (nothing lost, nothing twice)", n, tc.delivered)
			}
		})
	}
}

// TestQuotaPausesTheWholeSender: while one Send waits out QUOTA_EXCEEDED,
// another Send of the same sender waits too instead of hitting FCM.
func TestQuotaPausesTheWholeSender(t *testing.T) {
	fake := fcmfake.New(fcmfake.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	waiting := make(chan time.Duration, 10)
	release := make(chan struct{})
	s, err := push.NewFCM(t.Context(), push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			waiting <- d
			<-release
			return ctx.Err()
		}})
	if err != nil {
		t.Fatal(err)
	}
	fake.FailNext(1, fcmfake.QuotaExceeded, 30*time.Second)
	done := make(chan []push.Result, 2)
	go func() { done <- s.Send(t.Context(), messages(1, store.ReminderDose)) }()
	if d := <-waiting; d < 30*time.Second {
		t.Fatalf("paused for %v, want the 30s Retry-After", d)
	}
	go func() { done <- s.Send(t.Context(), messages(2, store.ReminderRefill)) }()
	if d := <-waiting; d < 29*time.Second {
		t.Fatalf("second send waited %v, want the rest of the pause", d)
	}
	if n := fake.Accepted(); n != 0 {
		t.Fatalf("%d messages reached FCM during the pause", n)
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	close(release)
	for range 2 {
		for _, r := range <-done {
			if r.Outcome != push.Sent {
				t.Fatalf("after the pause: %v (%v)", r.Outcome, r.Err)
			}
		}
	}
	if n := fake.Accepted(); n != 3 {
		t.Fatalf("fake FCM accepted %d, want 3", n)
	}
}

// TestInvalidArgumentPrunesOnlyWhenFCMNamesTheToken: through the real SDK,
// an INVALID_ARGUMENT whose detail names message.token condemns the
// device; one about the message does not, and both are counted by code.
func TestInvalidArgumentPrunesOnlyWhenFCMNamesTheToken(t *testing.T) {
	fake := fcmfake.New(fcmfake.Options{})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	reg := prometheus.NewRegistry()
	s, err := push.NewFCM(t.Context(), push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	fake.FailToken("tok-0", fcmfake.InvalidToken)
	fake.FailToken("tok-1", fcmfake.InvalidArgument)
	fake.FailToken("tok-2", fcmfake.Unregistered)
	res := s.Send(t.Context(), messages(4, store.ReminderDose))
	want := []struct {
		outcome push.Outcome
		code    string
	}{{push.InvalidToken, push.CodeInvalidArgument}, {push.Failed, push.CodeInvalidArgument}, {push.InvalidToken, push.CodeUnregistered}, {push.Sent, push.CodeOK}}
	for i, w := range want {
		if res[i].Outcome != w.outcome || res[i].Code != w.code {
			t.Errorf("tok-%d: %v %s, want %v %s", i, res[i].Outcome, res[i].Code, w.outcome, w.code)
		}
	}
	for _, c := range []struct {
		outcome, code string
		want          float64
	}{{"invalid_token", "INVALID_ARGUMENT", 1}, {"failed", "INVALID_ARGUMENT", 1}, {"invalid_token", "UNREGISTERED", 1}, {"sent", "OK", 1}} {
		if got := counter(t, reg, push.MetricResults, map[string]string{"outcome": c.outcome, "code": c.code}); got != c.want {
			t.Errorf("%s{outcome=%s,code=%s} = %v, want %v", push.MetricResults, c.outcome, c.code, got, c.want)
		}
	}
	if got := counter(t, reg, push.MetricResponses, map[string]string{"code": "INVALID_ARGUMENT"}); got != 2 {
		t.Errorf("%s{code=INVALID_ARGUMENT} = %v, want 2", push.MetricResponses, got)
	}
}

// counter is the value of the series of name whose labels include want.
func counter(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

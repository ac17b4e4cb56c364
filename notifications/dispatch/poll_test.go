package dispatch

import (
	"testing"
	"time"
)

// An idle worker looks again just after the next multiple of Poll, so the
// 8:00 reminders are claimed at 8:00:00.001 whenever the previous empty
// round ended, and never waits more than Poll (and the margin).
func TestPollWaitEndsOnTheBoundary(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse("15:04:05.000000", s)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 3, 2, v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	for _, c := range []struct {
		now  string
		poll time.Duration
		wake string
	}{
		{"07:59:59.400000", time.Second, "08:00:00.001000"},
		{"07:59:59.999900", time.Second, "08:00:00.001000"},
		{"08:00:00.000000", time.Second, "08:00:01.001000"}, // on the boundary: the round just ran
		{"08:00:00.000500", time.Second, "08:00:01.001000"},
		{"07:59:59.992000", 5 * time.Millisecond, "07:59:59.996000"},
	} {
		now := at(c.now)
		got := now.Add(pollWait(now, c.poll))
		if want := at(c.wake); !got.Equal(want) {
			t.Errorf("idle at %s, poll %s: looks again at %s, want %s", c.now, c.poll, got.Format("15:04:05.000000"), c.wake)
		}
		if w := pollWait(now, c.poll); w <= 0 || w > c.poll+pollMargin {
			t.Errorf("idle at %s, poll %s: waits %s, want (0, %s]", c.now, c.poll, w, c.poll+pollMargin)
		}
	}
}

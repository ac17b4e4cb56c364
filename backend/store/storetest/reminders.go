package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// reminder returns a dose reminder of patient pid due at t0+dueMin minutes.
func reminder(pid, ref string, dueMin int) store.Reminder {
	at := t0.Add(time.Duration(dueMin) * time.Minute).Truncate(time.Second)
	return store.Reminder{PatientID: pid, Kind: store.ReminderDose, RefID: ref, Occurrence: at, DueAt: at}
}

// claimAll claims every due reminder of every shard at now.
func claimAll(t *testing.T, s store.Store, now time.Time, lease time.Duration) []store.Reminder {
	t.Helper()
	var out []store.Reminder
	for sh := range s.ReminderShards() {
		got, err := s.ClaimDueReminders(t.Context(), sh, now, lease, 1000)
		must(t, "ClaimDueReminders", err)
		for _, r := range got {
			if s.ReminderShard(r.PatientID) != sh {
				t.Fatalf("shard %d returned a reminder of patient %s (shard %d)", sh, r.PatientID, s.ReminderShard(r.PatientID))
			}
		}
		out = append(out, got...)
	}
	return out
}

// keysOf lists the keys of rs, sorted.
func keysOf(rs []store.Reminder) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key())
	}
	slices.Sort(out)
	return out
}

// ackAll acknowledges rs as sent, shard by shard.
func ackAll(t *testing.T, s store.Store, rs []store.Reminder, now time.Time, window time.Duration) {
	t.Helper()
	by := map[int][]store.Reminder{}
	for _, r := range rs {
		by[s.ReminderShard(r.PatientID)] = append(by[s.ReminderShard(r.PatientID)], r)
	}
	for sh, done := range by {
		must(t, "AckReminders", s.AckReminders(t.Context(), sh, done, nil, now, window))
	}
}

var reminderCases = []testCase{
	{"ClaimLeasesDueRemindersUntilTheLeaseEnds", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		a, b, later := reminder("pat-1", "ds-a", -1), reminder("pat-2", "ds-b", 0), reminder("pat-1", "ds-c", 60)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{a, later}, nil))
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-2", []store.Reminder{b}, nil))
		got := claimAll(t, s, t0, time.Minute)
		if k := keysOf(got); !slices.Equal(k, keysOf([]store.Reminder{a, b})) {
			t.Fatalf("claimed %v, want the two due reminders", k)
		}
		for _, r := range got {
			want := a
			if r.PatientID == "pat-2" {
				want = b
			}
			if !r.DueAt.Equal(want.DueAt) || !r.Occurrence.Equal(want.Occurrence) || r.Kind != want.Kind || r.RefID != want.RefID {
				t.Fatalf("claimed %+v, want %+v", r, want)
			}
		}
		if again := claimAll(t, s, t0.Add(59*time.Second), time.Minute); len(again) != 0 {
			t.Fatalf("claimed %v again while leased", keysOf(again))
		}
		if again := claimAll(t, s, t0.Add(61*time.Second), time.Minute); len(again) != 2 {
			t.Fatalf("after the lease ended: claimed %v, want both again", keysOf(again))
		}
	}},
	{"RenewKeepsALeaseAndATakeoverKeepsTheDueTime", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		a, b := reminder("pat-1", "ds-a", -1), reminder("pat-2", "ds-b", 0)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{a}, nil))
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-2", []store.Reminder{b}, nil))
		for _, r := range claimAll(t, s, t0, time.Minute) {
			if r.Reclaimed {
				t.Fatalf("first claim of %s reported as a takeover", r.Key())
			}
		}
		// The dispatcher holding a keeps renewing; b's holder died.
		n, err := s.RenewReminderLeases(ctx, s.ReminderShard("pat-1"), []store.Reminder{a}, t0.Add(50*time.Second), time.Minute)
		must(t, "RenewReminderLeases", err)
		if n != 1 {
			t.Fatalf("renewed %d leases, want 1", n)
		}
		got := claimAll(t, s, t0.Add(61*time.Second), time.Minute)
		if len(got) != 1 || got[0].Key() != b.Key() || !got[0].Reclaimed || !got[0].DueAt.Equal(b.DueAt) {
			t.Fatalf("after b's lease ran out: claimed %+v; want only b, Reclaimed, due at %v (its due time, not its lease's end)", got, b.DueAt)
		}
		got = claimAll(t, s, t0.Add(111*time.Second), time.Minute)
		if len(got) != 1 || got[0].Key() != a.Key() || !got[0].Reclaimed || !got[0].DueAt.Equal(a.DueAt) {
			t.Fatalf("after a's renewed lease ran out: claimed %+v; want a, Reclaimed, due at %v", got, a.DueAt)
		}
		// b's second lease ran out at t0+121s: a late renewal does not
		// take it back from whoever claims it next.
		n, err = s.RenewReminderLeases(ctx, s.ReminderShard("pat-2"), []store.Reminder{b}, t0.Add(122*time.Second), time.Hour)
		must(t, "RenewReminderLeases", err)
		if n != 0 {
			t.Fatalf("renewed %d leases that had run out, want 0", n)
		}
		if got := claimAll(t, s, t0.Add(123*time.Second), time.Minute); len(got) != 1 || got[0].Key() != b.Key() {
			t.Fatalf("claimed %v after the late renewal, want b", keysOf(got))
		}
		// A renewal never shortens a lease.
		n, err = s.RenewReminderLeases(ctx, s.ReminderShard("pat-2"), []store.Reminder{b}, t0.Add(124*time.Second), time.Second)
		must(t, "RenewReminderLeases", err)
		if got := claimAll(t, s, t0.Add(130*time.Second), time.Minute); n != 1 || len(got) != 0 {
			t.Fatalf("a 1s renewal of a 1m lease: renewed %d, claimed %v; want the lease kept", n, keysOf(got))
		}
	}},
	{"RenewLeavesSettledAndRescheduledRemindersAlone", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		a, b, c, d := reminder("pat-1", "ds-a", 0), reminder("pat-1", "ds-b", 0), reminder("pat-1", "ds-c", 0), reminder("pat-1", "ds-d", 0)
		never := reminder("pat-1", "ds-never", 0)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{a, b, c, d}, nil))
		sh := s.ReminderShard("pat-1")
		if got := claimAll(t, s, t0, time.Minute); len(got) != 4 {
			t.Fatalf("claimed %d, want 4", len(got))
		}
		deferred := b
		deferred.DueAt = t0.Add(time.Hour)
		must(t, "SettleReminders", s.SettleReminders(ctx, sh, store.Settlement{Done: []store.Reminder{a}, Next: []store.Reminder{deferred},
			Now: t0.Add(time.Second), DedupeWindow: time.Hour}))
		moved := c
		moved.DueAt = t0.Add(2 * time.Hour)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{moved}, nil))
		n, err := s.RenewReminderLeases(ctx, sh, []store.Reminder{a, b, c, d, never}, t0.Add(10*time.Second), 10*time.Hour)
		must(t, "RenewReminderLeases", err)
		if n != 1 {
			t.Fatalf("renewed %d, want only d (a settled, b deferred, c rescheduled, one never claimed)", n)
		}
		got := claimAll(t, s, t0.Add(time.Hour), time.Minute)
		if len(got) != 1 || got[0].Key() != b.Key() || got[0].Reclaimed || !got[0].DueAt.Equal(deferred.DueAt) {
			t.Fatalf("at the deferred time claimed %+v; want b due at %v, not a takeover", got, deferred.DueAt)
		}
		ackAll(t, s, got, t0.Add(time.Hour), time.Hour)
		got = claimAll(t, s, t0.Add(2*time.Hour), time.Minute)
		if len(got) != 1 || got[0].Key() != c.Key() || got[0].Reclaimed || !got[0].DueAt.Equal(moved.DueAt) {
			t.Fatalf("at the rescheduled time claimed %+v; want c due at %v, not a takeover", got, moved.DueAt)
		}
		ackAll(t, s, got, t0.Add(2*time.Hour), time.Hour)
		if got := claimAll(t, s, t0.Add(9*time.Hour), time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v while d's renewed lease stands", keysOf(got))
		}
	}},
	{"ClaimHonoursLimitOldestFirst", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		var rs []store.Reminder
		for i := range 5 {
			rs = append(rs, reminder("pat-1", fmt.Sprintf("ds-%d", i), -i))
		}
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", rs, nil))
		got, err := s.ClaimDueReminders(ctx, s.ReminderShard("pat-1"), t0, time.Minute, 2)
		must(t, "ClaimDueReminders", err)
		if k := keysOf(got); !slices.Equal(k, keysOf(rs[3:])) {
			t.Fatalf("claimed %v, want the two oldest %v", k, keysOf(rs[3:]))
		}
	}},
	{"AckedRemindersAreNotSentTwice", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		r := reminder("pat-1", "ds-a", 0)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{r}, nil))
		got := claimAll(t, s, t0, time.Minute)
		ackAll(t, s, got, t0.Add(time.Second), time.Hour)
		if again := claimAll(t, s, t0.Add(2*time.Minute), time.Minute); len(again) != 0 {
			t.Fatalf("claimed %v after it was acknowledged", keysOf(again))
		}
		// Scheduling the same occurrence again within the dedupe window
		// (a schedule edit racing the dispatcher) does not send it again.
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{r}, nil))
		if again := claimAll(t, s, t0.Add(3*time.Minute), time.Minute); len(again) != 0 {
			t.Fatalf("claimed %v again within the dedupe window", keysOf(again))
		}
		// A snoozed attempt is a new key.
		snoozed := r
		snoozed.Attempt, snoozed.DueAt = 1, t0.Add(10*time.Minute)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{snoozed}, nil))
		if again := claimAll(t, s, t0.Add(10*time.Minute), time.Minute); !slices.Equal(keysOf(again), keysOf([]store.Reminder{snoozed})) {
			t.Fatalf("claimed %v, want the snoozed attempt", keysOf(again))
		}
	}},
	{"AckSchedulesNextAndDefers", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		a, b := reminder("pat-1", "ds-a", 0), reminder("pat-1", "ds-b", 0)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{a, b}, nil))
		claimAll(t, s, t0, time.Minute)
		next := reminder("pat-1", "ds-a", 24*60)
		deferred := b
		deferred.DueAt = t0.Add(8 * time.Hour)
		must(t, "AckReminders", s.AckReminders(ctx, s.ReminderShard("pat-1"), []store.Reminder{a}, []store.Reminder{next, deferred}, t0, time.Hour))
		if got := claimAll(t, s, t0.Add(8*time.Hour-time.Second), time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v before the deferred time", keysOf(got))
		}
		got := claimAll(t, s, t0.Add(8*time.Hour), time.Minute)
		if !slices.Equal(keysOf(got), keysOf([]store.Reminder{b})) {
			t.Fatalf("at the deferred time claimed %v, want %v", keysOf(got), keysOf([]store.Reminder{b}))
		}
		ackAll(t, s, got, t0.Add(8*time.Hour), time.Hour)
		if got := claimAll(t, s, t0.Add(24*time.Hour), time.Minute); !slices.Equal(keysOf(got), keysOf([]store.Reminder{next})) {
			t.Fatalf("next day claimed %v, want the next occurrence", keysOf(got))
		}
	}},
	{"ScheduleCancelsAndMoves", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		old, moved := reminder("pat-1", "md-1", 0), reminder("pat-1", "ds-a", 0)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{old, moved}, nil))
		fresh := reminder("pat-1", "md-1", 600)
		moved.DueAt = t0.Add(time.Hour)
		gone := reminder("pat-1", "never-scheduled", 0)
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, "pat-1", []store.Reminder{fresh, moved}, []store.Reminder{old, gone}))
		if got := claimAll(t, s, t0.Add(59*time.Minute), time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v: the cancelled reminder or the moved one came early", keysOf(got))
		}
		if got := claimAll(t, s, t0.Add(10*time.Hour), time.Minute); !slices.Equal(keysOf(got), keysOf([]store.Reminder{fresh, moved})) {
			t.Fatalf("claimed %v, want %v", keysOf(got), keysOf([]store.Reminder{fresh, moved}))
		}
		if err := s.ScheduleReminders(ctx, "pat-2", []store.Reminder{fresh}, nil); err == nil {
			t.Fatal("ScheduleReminders accepted a reminder of another patient")
		}
	}},
	{"ManyPatientsSpreadOverShards", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		var all []store.Reminder
		for i := range 64 {
			pid := fmt.Sprintf("pat-%03d", i)
			r := reminder(pid, "ds-a", 0)
			must(t, "ScheduleReminders", s.ScheduleReminders(ctx, pid, []store.Reminder{r}, nil))
			all = append(all, r)
		}
		if got := claimAll(t, s, t0, time.Minute); !slices.Equal(keysOf(got), keysOf(all)) {
			t.Fatalf("claimed %d reminders over all shards, want %d", len(got), len(all))
		}
	}},
	{"SettleRecordsHistoryAndAcknowledgesTogether", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		// Two patients of one shard, each with a dose due now.
		p1 := "pat-1"
		p2 := ""
		for i := range 1000 {
			if id := fmt.Sprintf("pat-%d", i+2); s.ReminderShard(id) == s.ReminderShard(p1) {
				p2 = id
				break
			}
		}
		if p2 == "" {
			t.Fatal("no second patient on pat-1's shard")
		}
		sh := s.ReminderShard(p1)
		a, b, c := reminder(p1, "ds-a", 0), reminder(p2, "ds-b", 0), reminder(p2, "ds-c", 0)
		for _, r := range []store.Reminder{a, b, c} {
			must(t, "ScheduleReminders", s.ScheduleReminders(ctx, r.PatientID, []store.Reminder{r}, nil))
		}
		if got := claimAll(t, s, t0, time.Minute); len(got) != 3 {
			t.Fatalf("claimed %d, want 3", len(got))
		}
		note := func(r store.Reminder, sec int) store.Notification {
			return store.Notification{PatientID: r.PatientID, Key: r.Key(), OccurrenceID: r.OccurrenceID(), Kind: r.Kind, SentAt: t0.Add(time.Duration(sec) * time.Second)}
		}
		old := reminder(p2, "ds-old", -600)
		next := reminder(p1, "ds-a", 24*60)
		must(t, "SettleReminders", s.SettleReminders(ctx, sh, store.Settlement{Done: []store.Reminder{a, b}, Next: []store.Reminder{next},
			Sent: []store.Notification{note(old, -3600), note(a, 1), note(b, 2), note(c, 3)}, Now: t0, DedupeWindow: time.Hour, HistoryKeep: 2}))
		h1, err := s.ListNotifications(ctx, p1, 10)
		must(t, "ListNotifications", err)
		h2, err := s.ListNotifications(ctx, p2, 10)
		must(t, "ListNotifications", err)
		if len(h1) != 1 || h1[0].Key != a.Key() || !h1[0].SentAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("history of %s = %+v, want the one sent", p1, h1)
		}
		if len(h2) != 2 || h2[0].Key != c.Key() || h2[1].Key != b.Key() {
			t.Fatalf("history of %s = %+v, want the newest two (%s, %s)", p2, h2, c.Key(), b.Key())
		}
		// After the lease: c (not done) is due again, a and b are not; the
		// next dose is scheduled.
		if got := claimAll(t, s, t0.Add(2*time.Minute), 48*time.Hour); !slices.Equal(keysOf(got), keysOf([]store.Reminder{c})) {
			t.Fatalf("after the lease claimed %v, want only the unsettled %s", keysOf(got), c.Key())
		}
		if got := claimAll(t, s, next.DueAt, time.Minute); !slices.Equal(keysOf(got), keysOf([]store.Reminder{next})) {
			t.Fatalf("at the next dose claimed %v, want %s", keysOf(got), next.Key())
		}
		// Scheduling a done key again within the window is dropped at claim.
		must(t, "ScheduleReminders", s.ScheduleReminders(ctx, p1, []store.Reminder{a}, nil))
		if got := claimAll(t, s, t0.Add(30*time.Minute), time.Minute); len(got) != 0 {
			t.Fatalf("a settled key came back within the dedupe window: %v", keysOf(got))
		}
		if err := s.SettleReminders(ctx, sh, store.Settlement{Sent: []store.Notification{note(a, 1)}, Now: t0}); err == nil {
			t.Fatal("SettleReminders with history and no keep: no error")
		}
	}},
	{"NotificationHistoryIsBoundedAndDeduplicated", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		note := func(i int) store.Notification {
			r := reminder("pat-1", "ds-a", i*60)
			return store.Notification{PatientID: "pat-1", Key: r.Key(), OccurrenceID: r.OccurrenceID(), Kind: r.Kind, SentAt: r.DueAt.Add(time.Second)}
		}
		for i := range 5 {
			must(t, "AppendNotifications", s.AppendNotifications(ctx, []store.Notification{note(i), note(i)}, 3))
		}
		must(t, "AppendNotifications", s.AppendNotifications(ctx, []store.Notification{note(4)}, 3))
		got, err := s.ListNotifications(ctx, "pat-1", 10)
		must(t, "ListNotifications", err)
		var keys []string
		for _, n := range got {
			keys = append(keys, n.Key)
			if n.PatientID != "pat-1" || n.Kind != store.ReminderDose {
				t.Fatalf("notification %+v lost its patient or kind", n)
			}
		}
		want := []string{note(4).Key, note(3).Key, note(2).Key}
		if !slices.Equal(keys, want) {
			t.Fatalf("history %v, want the newest three once each %v", keys, want)
		}
		if w := note(4); got[0].OccurrenceID != w.OccurrenceID || !got[0].SentAt.Equal(w.SentAt) {
			t.Fatalf("newest = %+v, want %+v", got[0], w)
		}
		if none, err := s.ListNotifications(ctx, "pat-none", 10); err != nil || len(none) != 0 {
			t.Fatalf("unknown patient: %v, %v", none, err)
		}
	}},
	{"DoseConfirmationsReplaceAndTrim", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		dose := func(i int, o store.DoseOutcome) store.DoseRecord {
			r := reminder("pat-1", "ds-a", i*60)
			return store.DoseRecord{PatientID: "pat-1", OccurrenceID: r.OccurrenceID(), Occurrence: r.Occurrence, Outcome: o,
				RecordedBy: "pat-1", RecordedAt: r.Occurrence.Add(time.Minute)}
		}
		_, err := s.GetDose(ctx, "pat-1", dose(0, "").OccurrenceID)
		wantErr(t, "GetDose before any", err, store.ErrNotFound)
		snoozed := dose(0, store.DoseSnoozed)
		snoozed.SnoozedUntil = snoozed.Occurrence.Add(10 * time.Minute)
		must(t, "RecordDose", s.RecordDose(ctx, snoozed, 3))
		got, err := s.GetDose(ctx, "pat-1", snoozed.OccurrenceID)
		must(t, "GetDose", err)
		if got.Outcome != store.DoseSnoozed || !got.SnoozedUntil.Equal(snoozed.SnoozedUntil) || !got.Occurrence.Equal(snoozed.Occurrence) || got.RecordedBy != "pat-1" {
			t.Fatalf("GetDose = %+v, want %+v", got, snoozed)
		}
		must(t, "RecordDose", s.RecordDose(ctx, dose(0, store.DoseTaken), 3))
		if got, _ := s.GetDose(ctx, "pat-1", snoozed.OccurrenceID); got.Outcome != store.DoseTaken {
			t.Fatalf("after taken: outcome %q, want taken", got.Outcome)
		}
		for i := 1; i <= 3; i++ {
			must(t, "RecordDose", s.RecordDose(ctx, dose(i, store.DoseTaken), 3))
		}
		_, err = s.GetDose(ctx, "pat-1", dose(0, "").OccurrenceID)
		wantErr(t, "GetDose of the trimmed oldest", err, store.ErrNotFound)
		for i := 1; i <= 3; i++ {
			if _, err := s.GetDose(ctx, "pat-1", dose(i, "").OccurrenceID); err != nil {
				t.Fatalf("dose %d: %v", i, err)
			}
		}
	}},
	{"LoadReminderContextReadsPatientsAndConfirmations", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		p := SamplePatient("pat-1", "ph-1", 3)
		p.Medications[1].StoppedOn = store.DateOf(t0)
		p.Fills = []store.Fill{{ID: "fl-1", MedicationID: p.Medications[0].ID, FilledOn: store.DateOf(t0), DaysSupply: 30, RecordedAt: t0}}
		p.Grants = []store.Grant{{ID: "gr-1", CaregiverID: "acc-1", CaregiverName: "Sam", Scopes: []store.Scope{store.ScopeMissedDoseAlerts}, CreatedAt: t0}}
		p.Devices = []store.Device{{ID: "dv-1", FCMToken: "tok-1", Platform: "android", RegisteredAt: t0}}
		p.DoseSchedules = []store.DoseSchedule{{ID: "ds-a", MedicationID: p.Medications[0].ID, TimesOfDay: []int{480, 1200},
			DaysOfWeek: []time.Weekday{time.Monday}, StartOn: store.DateOf(t0)}}
		p.FollowUps = []store.FollowUp{{ID: "fu-1", DueAt: t0.Add(time.Hour), CreatedBy: "acc-2", CreatedAt: t0}}
		must(t, "CreatePatient", s.CreatePatient(ctx, p))
		stored, err := s.GetPatient(ctx, "pat-1")
		must(t, "GetPatient", err)
		dose, missed := reminder("pat-1", "ds-a", 0), reminder("pat-1", "ds-b", 0)
		missed.Kind = store.ReminderMissedDose
		refill := reminder("pat-1", "md-1", 0)
		refill.Kind = store.ReminderRefill
		gone := reminder("pat-gone", "ds-a", 0)
		must(t, "RecordDose", s.RecordDose(ctx, store.DoseRecord{PatientID: "pat-1", OccurrenceID: dose.DoseOccurrenceID(), Occurrence: dose.Occurrence,
			Outcome: store.DoseTaken, RecordedBy: "pat-1", RecordedAt: t0}, 10))
		got, err := s.LoadReminderContext(ctx, []store.Reminder{dose, missed, refill, gone, dose})
		must(t, "LoadReminderContext", err)
		if len(got.Patients) != 1 || got.Patients["pat-1"].Version != 1 || len(got.Patients["pat-1"].Medications) != 3 {
			t.Fatalf("patients %v: want pat-1 only, as stored", len(got.Patients))
		}
		// The reminder view carries what reminders read, as stored.
		view := got.Patients["pat-1"]
		type reminderView struct {
			ID, PharmacyID, TimeZone string
			QuietHours               store.QuietHours
			PushNamesMedicine        bool
			Fills                    []store.Fill
			Grants                   []store.Grant
			Devices                  []store.Device
			DoseSchedules            []store.DoseSchedule
			FollowUps                []store.FollowUp
			Medications              [][5]string
		}
		viewOf := func(p store.Patient) reminderView {
			v := reminderView{ID: p.ID, PharmacyID: p.PharmacyID, TimeZone: p.TimeZone, QuietHours: p.QuietHours, PushNamesMedicine: p.PushNamesMedicine,
				Fills: p.Fills, Grants: p.Grants, Devices: p.Devices, DoseSchedules: p.DoseSchedules, FollowUps: p.FollowUps}
			for _, m := range p.Medications {
				v.Medications = append(v.Medications, [5]string{m.ID, m.Name, m.Strength, m.StartedOn.String(), m.StoppedOn.String()})
			}
			return v
		}
		if !reflect.DeepEqual(viewOf(view), viewOf(stored)) {
			t.Fatalf("reminder view\n%+v\nwant\n%+v", viewOf(view), viewOf(stored))
		}
		if len(got.Doses) != 1 || got.Doses[store.DoseKey("pat-1", dose.DoseOccurrenceID())].Outcome != store.DoseTaken {
			t.Fatalf("doses %+v: want the one confirmation", got.Doses)
		}
	}},
}

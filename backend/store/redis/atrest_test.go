package redisstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/seal"
	"github.com/mtmapp/mtm/backend/store/seal/sealtest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

func TestOpenNeedsTheRightKEK(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	cfg := redisstore.Config{Addrs: []string{addr}}
	if _, err := redisstore.Open(t.Context(), cfg, redisstore.Options{}); err == nil || !strings.Contains(err.Error(), "no key-encryption key") {
		t.Fatalf("Open without a KEK: %v, want a refusal naming the missing key-encryption key", err)
	}
	s, err := redisstore.Open(t.Context(), cfg, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := redisstore.Open(t.Context(), cfg, redisstore.Options{KEK: redistest.NewKEK()}); !errors.Is(err, seal.ErrWrongKEK) {
		t.Fatalf("Open with another KEK: %v, want seal.ErrWrongKEK", err)
	}
	// Another process with the same KEK shares the store's keys.
	again, err := redisstore.Open(t.Context(), cfg, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatalf("second Open with the same KEK: %v", err)
	}
	defer again.Close()
	if err := s.CreatePatient(t.Context(), storetest.SamplePatient("pat-1", "ph-1", 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := again.GetPatient(t.Context(), "pat-1"); err != nil {
		t.Fatalf("GetPatient through the second store: %v", err)
	}
}

// TestSealedValueMovedToAnotherPatientDoesNotOpen copies one patient's
// sealed record over another's: the read fails with seal.ErrTampered
// instead of showing one patient's data as another's.
func TestSealedValueMovedToAnotherPatientDoesNotOpen(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, id := range []string{"pat-a", "pat-b"} {
		if err := s.CreatePatient(ctx, storetest.SamplePatient(id, "ph-1", 2)); err != nil {
			t.Fatal(err)
		}
	}
	c := s.Client()
	a, err := c.Get(ctx, "mtm:{p:pat-a}").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "mtm:{p:pat-b}", a, 0)
	if _, err := s.GetPatient(ctx, "pat-b"); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("GetPatient of a record moved from another patient: %v, want seal.ErrTampered", err)
	}
	// The same with the other patient's wrapped data key copied too.
	k, _ := c.Get(ctx, "mtm:{p:pat-a}:key").Bytes()
	c.Set(ctx, "mtm:{p:pat-b}:key", k, 0)
	if _, err := s.GetPatient(ctx, "pat-b"); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("GetPatient with another patient's data key: %v, want seal.ErrTampered", err)
	}
}

// TestMigrationSealsEverythingThenTheAOFRewriteDropsTheHistory writes the
// marker world (storetest.SeedMarkers: a value of every kind) as a release
// before sealing did (values unsealed, e-mail, code and invite keys clear)
// on a Redis with appendonly yes and appendfsync always, then migrates:
// everything reads before and after, a Reencrypt pass leaves no marker in
// any key or value, but the AOF still holds the history of the unsealed
// writes until BGREWRITEAOF (Store.RewriteAOF) rewrites it. That is the
// migration: Reencrypt, then rewrite every AOF.
func TestMigrationSealsEverythingThenTheAOFRewriteDropsTheHistory(t *testing.T) {
	addr, srv := redistest.StartServer(t, redistest.AppendOnly(true), redistest.AppendFsync("always"))
	cfg := redisstore.Config{Addrs: []string{addr}}
	ctx := t.Context()
	old, err := redisstore.Open(ctx, cfg, redisstore.Options{KEK: redistest.KEK(), NoSeal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	w := storetest.SeedMarkers(t, old)
	// Before blind indexes the e-mails and the code and invite hashes
	// were the keys.
	c := old.Client()
	marker := strings.ToLower(storetest.Marker)
	emails := map[string]string{"acct-caregiver-0042": marker + ".carer@example.com", "acct-pharm-mark": marker + ".pharmacist@example.org"}
	claims, err := c.Keys(ctx, "mtm:{e:*}").Result()
	if err != nil || len(claims) != len(emails) {
		t.Fatalf("e-mail claims %v, %v", claims, err)
	}
	for _, key := range claims {
		_, id, _ := strings.Cut(c.Get(ctx, key).Val(), "\n")
		must(t, c.Rename(ctx, key, "mtm:{e:"+emails[id]+"}").Err())
	}
	renameToClear := func(pattern, to string) {
		t.Helper()
		keys, err := c.Keys(ctx, pattern).Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("KEYS %s: %v, %v", pattern, keys, err)
		}
		must(t, c.Rename(ctx, keys[0], to).Err())
	}
	renameToClear("mtm:{c:*}", "mtm:{c:"+marker+"-activation-code-hash}")
	renameToClear("mtm:{i:*}", "mtm:{i:"+marker+"-invite-code-hash}")

	s, err := redisstore.Open(ctx, cfg, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CheckMarkers(t, s, w)
	if n, _ := storetest.MarkerHits(dataBytes(t, c)); n == 0 {
		t.Fatal("the values written unsealed hold no marker: the test would prove nothing")
	}

	page := store.ReencryptPage{Next: "start"}
	resealed := 0
	for cursor := ""; page.Next != ""; cursor = page.Next {
		if page, err = s.Reencrypt(ctx, cursor, store.ReencryptOptions{Limit: 1}); err != nil {
			t.Fatal(err)
		}
		resealed += page.Resealed
	}
	if resealed == 0 {
		t.Fatal("the pass resealed nothing")
	}
	storetest.CheckMarkers(t, s, w)
	if n, where := storetest.MarkerHits(dataBytes(t, c)); n != 0 {
		t.Fatalf("after the pass %d markers remain in keys and values: %v", n, where)
	}
	if n, _ := storetest.MarkerHits(aofBytes(t, srv.Dir())); n == 0 {
		t.Fatal("the AOF lost the unsealed history before a rewrite: the test would prove nothing")
	}

	must(t, s.RewriteAOF(ctx))
	waitRewrite(t, c)
	if n, where := storetest.MarkerHits(aofBytes(t, srv.Dir())); n != 0 {
		t.Fatalf("after BGREWRITEAOF the AOF still holds %d markers: %v", n, where)
	}
	// The rewritten AOF restores everything.
	srv.Restart()
	storetest.CheckMarkers(t, s, w)
	// An invite from before blind indexes was moved, and still works once.
	if _, err := s.ConsumeInvite(ctx, marker+"-invite-code-hash", time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("ConsumeInvite of the moved invite: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dataBytes is every key's name and DUMP.
func dataBytes(t *testing.T, c redis.UniversalClient) [][]byte {
	t.Helper()
	var out [][]byte
	ctx := t.Context()
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		v, err := c.Dump(ctx, iter.Val()).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		out = append(out, []byte(iter.Val()), []byte(v))
	}
	must(t, iter.Err())
	return out
}

// aofBytes is every file of the AOF under dir.
func aofBytes(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "appendonlydir", "*"))
	must(t, err)
	if len(files) == 0 {
		t.Fatalf("no AOF files under %s", dir)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		out = append(out, b)
	}
	return out
}

// waitRewrite waits until no AOF rewrite is scheduled or running.
func waitRewrite(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		info, err := c.Info(ctx, "persistence").Result()
		must(t, err)
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the AOF rewrite did not finish")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// BenchmarkSealing compares, in one run on one private Redis, sealed
// stores with NoSeal ones (values written as before sealing): reading a
// 20-medication patient, and a dispatcher round of 50 dose reminders
// (ClaimDueReminders, then LoadReminderContext, which reads the 50
// patients and their doses).
func BenchmarkSealing(b *testing.B) {
	addr, _ := redistest.StartServer(b)
	for _, mode := range []struct {
		name   string
		noSeal bool
	}{{"sealed", false}, {"noseal", true}} {
		s, err := redisstore.Open(b.Context(), redisstore.Config{Addrs: []string{addr}},
			redisstore.Options{KEK: redistest.KEK(), NoSeal: mode.noSeal, Prefix: "b-" + mode.name})
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		if err := s.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
			b.Fatal(err)
		}
		b.Run("GetPatient20Meds/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			defer storetest.ReportCPU(b)()
			for b.Loop() {
				if p, err := s.GetPatient(ctx, "pat-1"); err != nil || len(p.Medications) != 20 {
					b.Fatalf("GetPatient: %d medications, %v", len(p.Medications), err)
				}
			}
		})
		at := time.Unix(1_900_000_000, 0).UTC()
		shard := s.ReminderShard("pat-1")
		var batch []store.Reminder
		for k := 0; len(batch) < 50; k++ {
			id := "pat-r-" + strings.Repeat("x", k%3) + string(rune('a'+k%26)) + "-" + time.Duration(k).String()
			if s.ReminderShard(id) != shard {
				continue
			}
			if err := s.CreatePatient(ctx, storetest.SamplePatient(id, "ph-1", 5)); err != nil {
				b.Fatal(err)
			}
			batch = append(batch, store.Reminder{PatientID: id, Kind: store.ReminderDose, RefID: "sched-1", Occurrence: at, DueAt: at})
		}
		for _, r := range batch {
			if err := s.ScheduleReminders(ctx, r.PatientID, []store.Reminder{r}, nil); err != nil {
				b.Fatal(err)
			}
		}
		now := at // b.Run runs the function more than once: leases carry over
		b.Run("ClaimAndLoad50/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			defer storetest.ReportCPU(b)()
			for b.Loop() {
				now = now.Add(2 * time.Minute) // past the last lease
				claimed, err := s.ClaimDueReminders(ctx, shard, now, time.Minute, 50)
				if err != nil || len(claimed) != 50 {
					b.Fatalf("claimed %d: %v", len(claimed), err)
				}
				rc, err := s.LoadReminderContext(ctx, claimed)
				if err != nil || len(rc.Patients) != 50 {
					b.Fatalf("LoadReminderContext: %d patients, %v", len(rc.Patients), err)
				}
			}
		})
		s.Close()
	}
}

// TestAppendsAfterAnotherProcessRotatedTheKey: a store that appended an
// audit event and a dose (and remembers the patient's wrapped key) appends
// again after another process rotated the key and retired the old version:
// the appends are sealed under the new key and read back.
func TestAppendsAfterAnotherProcessRotatedTheKey(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	cfg := redisstore.Config{Addrs: []string{addr}}
	ctx := t.Context()
	a, err := redisstore.Open(ctx, cfg, redisstore.Options{KEK: redistest.KEK()})
	must(t, err)
	defer a.Close()
	b, err := redisstore.Open(ctx, cfg, redisstore.Options{KEK: redistest.KEK()})
	must(t, err)
	defer b.Close()
	must(t, a.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 1)))
	at := time.Date(2026, time.March, 1, 9, 0, 0, 0, time.UTC)
	event := func(id string) store.AuditEvent {
		return store.AuditEvent{ID: id, Time: at, ActorID: "acct-1", ActorName: "Dr. Who", PatientID: "pat-1", Procedure: "/x",
			Allowed: true, Outcome: store.OutcomeAllowed}
	}
	dose := func(occ string) store.DoseRecord {
		return store.DoseRecord{PatientID: "pat-1", OccurrenceID: occ, Occurrence: at, Outcome: store.DoseTaken, RecordedBy: "pat-1", RecordedAt: at}
	}
	must(t, a.AppendAuditEvent(ctx, event("ev-1"), 10))
	must(t, a.RecordDose(ctx, dose("d.s.1"), 10))
	page, err := b.Reencrypt(ctx, "", store.ReencryptOptions{RotateDataKeys: true})
	must(t, err)
	if page.Retired != 1 || page.Next != "" {
		t.Fatalf("rotation pass = %+v, want one retired version", page)
	}
	must(t, a.AppendAuditEvent(ctx, event("ev-2"), 10))
	must(t, a.RecordDose(ctx, dose("d.s.2"), 10))
	evs, err := b.ListAuditEvents(ctx, "pat-1", "", 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("ListAuditEvents after the rotation: %d events, %v", len(evs), err)
	}
	for _, occ := range []string{"d.s.1", "d.s.2"} {
		if _, err := b.GetDose(ctx, "pat-1", occ); err != nil {
			t.Fatalf("GetDose %s after the rotation: %v", occ, err)
		}
	}
}

// TestKEKRotation follows the README's rotation of a local key file on
// Redis: instances under the old key, then under old+new (new primary)
// while a pass rewraps everything, then under the new key alone.
func TestKEKRotation(t *testing.T) {
	before, during, after := sealtest.KEKRotation(t)
	addr, _ := redistest.StartServer(t)
	cfg := redisstore.Config{Addrs: []string{addr}}
	open := func(kek tink.AEAD) *redisstore.Store {
		t.Helper()
		s, err := redisstore.Open(t.Context(), cfg, redisstore.Options{KEK: kek})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	w := storetest.SeedMarkers(t, open(before))
	s := open(during)
	for cursor := ""; ; {
		page, err := s.Reencrypt(t.Context(), cursor, store.ReencryptOptions{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	storetest.CheckMarkers(t, open(after), w)
}

// TestRotationDoesNotStrandANewThreadOrCode: a thread and an activation
// code sealed under the patient's key just before another process ran a
// whole rotation pass (rotate, reseal, retire), and stored just after it,
// must still open: their writer reads the key again after storing and
// reseals what it wrote. Without that they stay under a retired version.
func TestRotationDoesNotStrandANewThreadOrCode(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	cfg := redisstore.Config{Addrs: []string{addr}}
	open := func() *redisstore.Store {
		t.Helper()
		s, err := redisstore.Open(t.Context(), cfg, redisstore.Options{KEK: redistest.KEK()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	writer, rotator := open(), open()
	ctx := t.Context()
	if err := writer.CreatePatient(ctx, storetest.SamplePatient("pat-1", "ph-1", 2)); err != nil {
		t.Fatal(err)
	}
	rotations := 0
	redisstore.SetSealedHook(writer, func(string) {
		rotations++
		for cursor := ""; ; {
			page, err := rotator.Reencrypt(ctx, cursor, store.ReencryptOptions{RotateDataKeys: true})
			if err != nil {
				t.Fatal(err)
			}
			if cursor = page.Next; cursor == "" {
				return
			}
		}
	})
	at := time.Now().UTC().Truncate(time.Second)
	th := store.Thread{ID: "th-1", PatientID: "pat-1", PharmacyID: "ph-1", Subject: "Ibuprofen?", StartedBy: "pat-1",
		State: store.ThreadOpen, StateSince: at, CreatedAt: at, UpdatedAt: at}
	first := store.Message{ClientMessageID: "cm-1", AuthorID: "pat-1", AuthorRole: store.RolePatient, AuthorName: "Pat", Body: "Can I take ibuprofen?", SentAt: at}
	if _, _, _, err := writer.CreateThread(ctx, th, first); err != nil {
		t.Fatal(err)
	}
	code := store.ActivationCode{CodeHash: "hash-1", PatientID: "pat-1", CreatedAt: at, ExpiresAt: at.Add(72 * time.Hour)}
	if err := writer.PutActivationCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if rotations != 2 {
		t.Fatalf("the hook ran %d rotations, want 2 (one per value)", rotations)
	}
	reader := open()
	if got, err := reader.GetThread(ctx, "th-1"); err != nil || got.Subject != th.Subject {
		t.Fatalf("the thread written across a rotation: %+v, %v", got, err)
	}
	msgs, err := reader.ListMessages(ctx, "th-1", 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].Body != first.Body {
		t.Fatalf("its first message: %+v, %v", msgs, err)
	}
	if got, err := reader.GetActivationCode(ctx, "hash-1", at); err != nil || got.PatientID != "pat-1" {
		t.Fatalf("the code written across a rotation: %+v, %v", got, err)
	}
}

package redisstore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// flush empties every primary behind client.
func flush(t testing.TB, client redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	var err error
	switch c := client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.FlushAll(ctx).Err() })
	default:
		err = client.FlushAll(ctx).Err()
	}
	if err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
}

// storeFactory returns a newStore for storetest.Run: one client per top-level
// test, a flushed database and a fresh Store per subtest. The stores it
// returns implement storetest.RawScanner over the servers whose
// directories are dirs (their AOF files).
func storeFactory(t *testing.T, cfg redisstore.Config, dirs []string, opts ...redisstore.Options) func(t *testing.T) store.Store {
	t.Helper()
	client := cfg.NewClient(2 * time.Second)
	t.Cleanup(func() { client.Close() })
	return func(t *testing.T) store.Store {
		t.Helper()
		flush(t, client)
		s, err := redisstore.New(t.Context(), client, append(opts, redisstore.Options{KEK: redistest.KEK()})[0])
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return rawStore{s, client, dirs}
	}
}

// rawStore is a Store whose raw bytes a test can scan: every key's name
// and DUMP on every primary, and every file under the servers' directories
// (the AOF, with its history of every write since the server started).
type rawStore struct {
	*redisstore.Store
	client redis.UniversalClient
	dirs   []string
}

func (r rawStore) RawBytes(t *testing.T) [][]byte {
	t.Helper()
	ctx := t.Context()
	var out [][]byte
	var mu sync.Mutex
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			v, err := c.Dump(ctx, key).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			mu.Lock()
			out = append(out, []byte(key), []byte(v))
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := r.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("rawStore: client %T", r.client)
	}
	if err != nil {
		t.Fatalf("SCAN/DUMP: %v", err)
	}
	for _, d := range r.dirs {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
		if err != nil {
			t.Fatalf("reading %s: %v", d, err)
		}
	}
	return out
}

// serverDirs are the directories of a cluster's servers.
func serverDirs(cl *redistest.Cluster) []string {
	var out []string
	for _, n := range append(append([]*redistest.Server{}, cl.Nodes...), cl.Replicas...) {
		out = append(out, n.Dir())
	}
	return out
}

// The single node and the Cluster keep an AOF (appendfsync always on the
// single node), which the at-rest cases scan with the keys and values.
func TestConformanceSingleNode(t *testing.T) {
	addr, srv := redistest.StartServer(t, redistest.AppendOnly(true), redistest.AppendFsync("always"))
	storetest.Run(t, storeFactory(t, redisstore.Config{Addrs: []string{addr}}, []string{srv.Dir()}))
}

func TestConformanceCluster(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.AppendOnly(true))
	storetest.Run(t, storeFactory(t, redisstore.Config{Addrs: cl.Addrs(), Cluster: true}, serverDirs(cl)))
}

// TestConformanceClusterReplicaAcks runs the suite with every write
// waiting for one replica (Options.ReplicaAcks), so each write path goes
// through WAIT on the primary that took it.
func TestConformanceClusterReplicaAcks(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.WithReplicas())
	storetest.Run(t, storeFactory(t, redisstore.Config{Addrs: cl.Addrs(), Cluster: true}, nil, redisstore.Options{KEK: redistest.KEK(), ReplicaAcks: 1}))
}

func TestConformanceSentinel(t *testing.T) {
	primary, srv := redistest.StartServer(t)
	sentinel := redistest.StartSentinel(t, "mtm-primary", primary)
	cfg, err := redisstore.ParseConfig("redis+sentinel://" + sentinel + "/mtm-primary")
	if err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, storeFactory(t, cfg, []string{srv.Dir()}))
}

// BenchmarkGetPatient20Meds reads one patient record with 20 medications
// (storetest.SamplePatient, the same data the bolt benchmark reads) from a
// private single-node Redis on loopback, once per record format so the
// formats compare in one run.
func BenchmarkGetPatient20Meds(b *testing.B) {
	for _, format := range redisstore.PatientFormats() {
		b.Run("format="+format, func(b *testing.B) {
			s := benchStore(b, format, false)
			ctx := b.Context()
			b.ReportAllocs()
			defer storetest.ReportCPU(b)()
			for b.Loop() {
				p, err := s.GetPatient(ctx, "pat-1")
				if err != nil || len(p.Medications) != 20 {
					b.Fatalf("GetPatient: %d medications, %v", len(p.Medications), err)
				}
			}
		})
	}
}

// BenchmarkUpdatePatient20Meds changes one field of a 20-medication record:
// a read and a compare-and-set script (appendfsync everysec), once per
// record format.
func BenchmarkUpdatePatient20Meds(b *testing.B) {
	for _, format := range redisstore.PatientFormats() {
		b.Run("format="+format, func(b *testing.B) {
			s := benchStore(b, format, true)
			ctx := b.Context()
			b.ReportAllocs()
			defer storetest.ReportCPU(b)()
			for b.Loop() {
				_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
					p.Questions = "Is it safe to take my evening doses together?"
					return p, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchStore starts a private Redis and stores SamplePatient pat-1 in
// format.
func benchStore(b *testing.B, format string, appendOnly bool) *redisstore.Store {
	b.Helper()
	addr, _ := redistest.StartServer(b, redistest.AppendOnly(appendOnly))
	s, err := redisstore.Open(b.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	redisstore.WritePatientsAs(s, format)
	if err := s.CreatePatient(b.Context(), storetest.SamplePatient("pat-1", "ph-1", 20)); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkReplicaAcks measures what waiting for a replica costs a record
// write: UpdatePatient of a 20-medication record (a read and a
// compare-and-set script) on one private 3-primary + 3-replica Cluster,
// without and with Options.ReplicaAcks 1, in the same run.
func BenchmarkReplicaAcks(b *testing.B) {
	cl := redistest.StartCluster(b, redistest.WithReplicas())
	for _, acks := range []int{0, 1} {
		b.Run("acks="+strconv.Itoa(acks), func(b *testing.B) {
			s, err := redisstore.Open(b.Context(), redisstore.Config{Addrs: cl.Addrs(), Cluster: true}, redisstore.Options{KEK: redistest.KEK(), ReplicaAcks: acks})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := b.Context()
			id := "pat-acks-" + strconv.Itoa(acks)
			if err := s.CreatePatient(ctx, storetest.SamplePatient(id, "ph-1", 20)); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				_, err := s.UpdatePatient(ctx, id, func(p store.Patient) (store.Patient, error) {
					p.Questions = "Is it safe to take my evening doses together?"
					return p, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReminderReplicaAcks measures what waiting for a replica costs
// the reminder writes that ReplicaAcks covers, on a 3+3 Cluster, with and
// without acks in one run: scheduling a dose reminder (SetDoseSchedule's
// index write), recording a dose, and a dispatcher round of 50 reminders
// (claim, then settle with their next occurrences and history).
func BenchmarkReminderReplicaAcks(b *testing.B) {
	cl := redistest.StartCluster(b, redistest.WithReplicas())
	for _, acks := range []int{0, 1} {
		s, err := redisstore.Open(b.Context(), redisstore.Config{Addrs: cl.Addrs(), Cluster: true}, redisstore.Options{KEK: redistest.KEK(), ReplicaAcks: acks})
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		suffix := "/acks=" + strconv.Itoa(acks)
		pid := "pat-rem-acks-" + strconv.Itoa(acks)
		at := time.Unix(1_900_000_000, 0).UTC()
		b.Run("ScheduleReminders"+suffix, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				due := at.Add(time.Duration(i) * time.Minute)
				r := store.Reminder{PatientID: pid, Kind: store.ReminderDose, RefID: "ds-1", Occurrence: due, DueAt: due}
				if err := s.ScheduleReminders(ctx, pid, []store.Reminder{r}, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("RecordDose"+suffix, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				occ := at.Add(time.Duration(i) * time.Minute)
				d := store.DoseRecord{PatientID: pid, OccurrenceID: "d.ds-1." + strconv.Itoa(i), Occurrence: occ, Outcome: store.DoseTaken,
					RecordedBy: pid, RecordedAt: occ}
				if err := s.RecordDose(ctx, d, 100); err != nil {
					b.Fatal(err)
				}
			}
		})
		calls := 0
		b.Run("ClaimAndSettle50"+suffix, func(b *testing.B) {
			calls++ // b.Run calls this more than once: fresh patients each time
			shard := s.ReminderShard(pid)
			var batch []store.Reminder
			for k := 0; len(batch) < 50; k++ {
				p := "pat-batch-" + strconv.Itoa(acks) + "-" + strconv.Itoa(calls) + "-" + strconv.Itoa(k)
				if s.ReminderShard(p) == shard {
					batch = append(batch, store.Reminder{PatientID: p, Kind: store.ReminderDose, RefID: "ds-1", Occurrence: at, DueAt: at})
				}
			}
			for _, r := range batch {
				if err := s.ScheduleReminders(ctx, r.PatientID, []store.Reminder{r}, nil); err != nil {
					b.Fatal(err)
				}
			}
			now := at
			for b.Loop() {
				now = now.Add(time.Minute)
				claimed, err := s.ClaimDueReminders(ctx, shard, now, time.Minute, 50)
				if err != nil || len(claimed) == 0 {
					b.Fatalf("claimed %d: %v", len(claimed), err)
				}
				next := make([]store.Reminder, len(claimed))
				sent := make([]store.Notification, len(claimed))
				for i, r := range claimed {
					sent[i] = store.Notification{PatientID: r.PatientID, Key: r.Key(), OccurrenceID: r.OccurrenceID(), Kind: r.Kind, SentAt: now}
					r.Occurrence, r.DueAt = now, now
					next[i] = r
				}
				if err := s.SettleReminders(ctx, shard, store.Settlement{Done: claimed, Next: next, Sent: sent, Now: now,
					DedupeWindow: time.Hour, HistoryKeep: 20}); err != nil {
					b.Fatal(err)
				}
			}
			// Leave the shard empty for the next call (untimed).
			end := now.Add(24 * time.Hour)
			for {
				left, err := s.ClaimDueReminders(ctx, shard, end, time.Minute, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(left) == 0 {
					break
				}
				if err := s.SettleReminders(ctx, shard, store.Settlement{Done: left, Now: end, DedupeWindow: time.Hour}); err != nil {
					b.Fatal(err)
				}
			}
		})
		s.Close()
	}
}

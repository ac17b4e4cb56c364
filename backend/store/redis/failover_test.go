package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// The Cluster failover tests run a 3-primary + 3-replica Cluster with
// cluster-node-timeout 2s, as a production Cluster would be tuned, and kill
// the primary of the first third of the slots with SIGKILL.
const failoverNodeTimeout = 2 * time.Second

// TestClusterFailoverWritesResume writes continuously through the store
// to the slots of one primary, kills that primary, and measures the
// cluster's own failover (from the kill until a surviving node reports
// cluster_state:ok with the replica serving the slots) and the store's
// (until writes succeed again and keep succeeding). The store must follow
// within twice the cluster's time: before it re-read the slot map on
// errors it kept dialing the dead primary until go-redis's 60s refresh.
func TestClusterFailoverWritesResume(t *testing.T) {
	cl := redistest.StartCluster(t, redistest.WithReplicas(), redistest.NodeTimeout(failoverNodeTimeout))
	s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: cl.Addrs(), Cluster: true}, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ids := pharmacyIDsInSlots(0, 5460) // served by cl.Nodes[0]
	checkKeySlot(t, s.Client(), ids(0))

	type result struct {
		end time.Time
		err error
	}
	var (
		mu      sync.Mutex
		results []result
	)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i += 4 {
				err := s.CreatePharmacy(ctx, store.Pharmacy{ID: ids(i), Name: "Main Street Pharmacy"})
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				results = append(results, result{time.Now(), err})
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a retrying client, not a busy loop
				}
			}
		})
	}
	time.Sleep(time.Second)

	killed := time.Now()
	cl.Nodes[0].Kill()
	failover := waitForFailover(t, cl.Replicas[0].Addr(), cl.Nodes[1].Addr(), killed)
	// Keep writing long enough to see the store come back (or not).
	time.Sleep(max(2*failover, 5*time.Second))
	stop()
	wg.Wait()

	var failed, afterKill int
	var lastErr error
	var lastFailure time.Time
	for _, r := range results {
		if r.end.Before(killed) {
			if r.err != nil {
				t.Fatalf("write failed before the kill: %v", r.err)
			}
			continue
		}
		afterKill++
		if r.err != nil {
			failed++
			lastErr = r.err
			if r.end.After(lastFailure) {
				lastFailure = r.end
			}
			if !errors.Is(r.err, store.ErrUnavailable) {
				t.Errorf("a write during the failover failed with %v, want store.ErrUnavailable", r.err)
			}
		}
	}
	resumed := time.Duration(0)
	if failed > 0 {
		first := time.Time{}
		for _, r := range results {
			if r.err == nil && r.end.After(lastFailure) && (first.IsZero() || r.end.Before(first)) {
				first = r.end
			}
		}
		if first.IsZero() {
			t.Fatalf("writes never succeeded again after the kill (%d failed, last: %v)", failed, lastErr)
		}
		resumed = first.Sub(killed)
	}
	t.Logf("cluster failover %s; store writes succeeded again %s after the kill (%.2fx); %d of %d writes after the kill failed",
		failover.Round(time.Millisecond), resumed.Round(time.Millisecond), resumed.Seconds()/failover.Seconds(), failed, afterKill)
	if resumed > 2*failover {
		t.Errorf("writes resumed %s after the kill, more than twice the cluster's failover (%s)", resumed, failover)
	}
}

// TestClusterFailoverReplicaAcks delays replication to the replica of one
// primary (the replica is paused and its replication link cut, so writes
// stay on the primary only), writes records and reminder schedules
// (ScheduleReminders, as SetDoseSchedule does), kills the primary and lets
// the replica take over. Without ReplicaAcks the writes acknowledged
// meanwhile are lost (a scheduled reminder would never be sent); with
// ReplicaAcks 1 none is acknowledged (each fails with
// store.ErrNotReplicated, which is store.ErrUnavailable) and so none is lost.
func TestClusterFailoverReplicaAcks(t *testing.T) {
	for _, acks := range []int{0, 1} {
		t.Run("acks="+strconv.Itoa(acks), func(t *testing.T) {
			cl := redistest.StartCluster(t, redistest.WithReplicas(), redistest.NodeTimeout(failoverNodeTimeout))
			s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: cl.Addrs(), Cluster: true},
				redisstore.Options{KEK: redistest.KEK(), ReplicaAcks: acks, ReplicaTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			ids := pharmacyIDsInSlots(0, 5460) // served by cl.Nodes[0]
			const before, during = 10, 10
			var acked []string
			for i := range before {
				if err := s.CreatePharmacy(ctx, store.Pharmacy{ID: ids(i), Name: "Main Street Pharmacy"}); err != nil {
					t.Fatalf("write with the replica in sync: %v", err)
				}
				acked = append(acked, ids(i))
			}
			shard, patients := reminderShardInSlots(t, s, 0, 5460) // a shard whose index cl.Nodes[0] serves
			due := time.Now().Add(time.Hour).Truncate(time.Second)
			reminder := func(i int) store.Reminder {
				return store.Reminder{PatientID: patients(i), Kind: store.ReminderDose, RefID: "ds-1", Occurrence: due, DueAt: due}
			}
			var ackedReminders []string
			for i := range before {
				if err := s.ScheduleReminders(ctx, patients(i), []store.Reminder{reminder(i)}, nil); err != nil {
					t.Fatalf("scheduling with the replica in sync: %v", err)
				}
				ackedReminders = append(ackedReminders, reminder(i).Key())
			}

			cl.Replicas[0].Pause()
			primary := redis.NewClient(&redis.Options{Addr: cl.Nodes[0].Addr()})
			defer primary.Close()
			if err := primary.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
				t.Fatalf("CLIENT KILL TYPE replica: %v", err)
			}
			var refused int
			for i := before; i < before+during; i++ {
				err := s.CreatePharmacy(ctx, store.Pharmacy{ID: ids(i), Name: "Main Street Pharmacy"})
				switch {
				case err == nil:
					acked = append(acked, ids(i))
				case errors.Is(err, store.ErrNotReplicated) && errors.Is(err, store.ErrUnavailable):
					refused++
				default:
					t.Fatalf("write with replication delayed: %v", err)
				}
			}
			var refusedReminders int
			for i := before; i < before+during; i++ {
				err := s.ScheduleReminders(ctx, patients(i), []store.Reminder{reminder(i)}, nil)
				switch {
				case err == nil:
					ackedReminders = append(ackedReminders, reminder(i).Key())
				case errors.Is(err, store.ErrNotReplicated) && errors.Is(err, store.ErrUnavailable):
					refusedReminders++
				default:
					t.Fatalf("scheduling with replication delayed: %v", err)
				}
			}

			killed := time.Now()
			cl.Nodes[0].Kill()
			cl.Replicas[0].Resume()
			failover := waitForFailover(t, cl.Replicas[0].Addr(), cl.Nodes[1].Addr(), killed)

			var lost int
			for _, id := range acked {
				if _, err := getPharmacyRetrying(ctx, s, id); errors.Is(err, store.ErrNotFound) {
					lost++
				} else if err != nil {
					t.Fatalf("reading %s after the failover: %v", id, err)
				}
			}
			// After the failover the promoted replica has no replica of its
			// own, so with acks every write (a claim too) fails until one
			// joins: read the index through a store that does not wait.
			reader, err := redisstore.Open(ctx, redisstore.Config{Addrs: []string{cl.Nodes[1].Addr()}, Cluster: true}, redisstore.Options{KEK: redistest.KEK()})
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			indexed := claimAllRetrying(t, reader, shard, due)
			var lostReminders int
			for _, k := range ackedReminders {
				if !indexed[k] {
					lostReminders++
				}
			}
			t.Logf("acks=%d: %d writes acknowledged (%d while replication was delayed), %d refused as not replicated; failover %s; %d acknowledged writes lost",
				acks, len(acked), len(acked)-before, refused, failover.Round(time.Millisecond), lost)
			t.Logf("acks=%d: %d reminder schedules acknowledged (%d while replication was delayed), %d refused; %d acknowledged reminders lost",
				acks, len(ackedReminders), len(ackedReminders)-before, refusedReminders, lostReminders)
			if acks == 0 && (lost == 0 || lostReminders == 0) {
				t.Errorf("without replica acks %d records and %d reminders were lost: the test did not delay replication", lost, lostReminders)
			}
			if acks > 0 && (lost != 0 || refused != during) {
				t.Errorf("with replica acks: %d acknowledged writes lost and %d of %d unreplicated writes refused, want 0 lost and all refused", lost, refused, during)
			}
			if acks > 0 && (lostReminders != 0 || refusedReminders != during) {
				t.Errorf("with replica acks: %d acknowledged reminders lost and %d of %d unreplicated schedules refused, want 0 lost and all refused",
					lostReminders, refusedReminders, during)
			}
		})
	}
}

// getPharmacyRetrying reads a pharmacy, retrying while the store is
// unavailable (for up to 10s), as a client would during a failover.
func getPharmacyRetrying(ctx context.Context, s *redisstore.Store, id string) (store.Pharmacy, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := s.GetPharmacy(ctx, id)
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			return p, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reminderShardInSlots returns a reminder shard whose index key
// (mtm:{rq:<n>}) hashes into the slots lo..hi, and a function that gives
// the i-th patient id on that shard.
func reminderShardInSlots(t *testing.T, s *redisstore.Store, lo, hi uint16) (int, func(i int) string) {
	t.Helper()
	shard := -1
	for n := range s.ReminderShards() {
		if slot := keySlot("rq:" + strconv.Itoa(n)); lo <= slot && slot <= hi {
			shard = n
			break
		}
	}
	if shard < 0 {
		t.Fatalf("no reminder shard in slots %d..%d", lo, hi)
	}
	var ids []string
	next := 0
	return shard, func(i int) string {
		for len(ids) <= i {
			id := "pt-" + strconv.Itoa(next)
			next++
			if s.ReminderShard(id) == shard {
				ids = append(ids, id)
			}
		}
		return ids[i]
	}
}

// claimAllRetrying claims every reminder of shard due by due (retrying
// while the store is unavailable, for up to 10s) and returns their keys.
func claimAllRetrying(t *testing.T, s *redisstore.Store, shard int, due time.Time) map[string]bool {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := s.ClaimDueReminders(t.Context(), shard, due, time.Minute, 1000)
		if err == nil {
			keys := map[string]bool{}
			for _, r := range rs {
				keys[r.Key()] = true
			}
			return keys
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("claiming shard %d after the failover: %v", shard, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForFailover polls the surviving node at observer until it reports
// cluster_state:ok with replica serving slot 0, and returns the time since
// killed.
func waitForFailover(t *testing.T, replica, observer string, killed time.Time) time.Duration {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: observer, MaxRetries: -1})
	defer c.Close()
	deadline := killed.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if failedOver(t.Context(), c, replica) {
			return time.Since(killed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the cluster did not fail over to %s within 60s", replica)
	return 0
}

// failedOver reports whether c's node sees the cluster ok with replica
// serving slot 0.
func failedOver(ctx context.Context, c *redis.Client, replica string) bool {
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil || !strings.Contains(info, "cluster_state:ok") {
		return false
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return false
	}
	for _, r := range slots {
		if r.Start <= 0 && 0 <= r.End && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr == replica
		}
	}
	return false
}

// pharmacyIDsInSlots returns a function that gives the i-th pharmacy id
// whose record key (mtm:{ph:<id>}) hashes into the slots lo..hi.
func pharmacyIDsInSlots(lo, hi uint16) func(i int) string {
	var mu sync.Mutex
	var ids []string
	next := 0
	return func(i int) string {
		mu.Lock()
		defer mu.Unlock()
		for len(ids) <= i {
			id := "ph-" + strconv.Itoa(next)
			next++
			if slot := keySlot("ph:" + id); lo <= slot && slot <= hi {
				ids = append(ids, id)
			}
		}
		return ids[i]
	}
}

// keySlot is Redis Cluster's slot of a hash tag: CRC16 (XMODEM) mod 16384.
func keySlot(tag string) uint16 {
	var crc uint16
	for i := 0; i < len(tag); i++ {
		crc ^= uint16(tag[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// checkKeySlot makes sure keySlot agrees with the server's CLUSTER KEYSLOT.
func checkKeySlot(t *testing.T, c redis.UniversalClient, id string) {
	t.Helper()
	key := fmt.Sprintf("mtm:{ph:%s}", id)
	got, err := c.ClusterKeySlot(t.Context(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := keySlot("ph:" + id); got != int64(want) {
		t.Fatalf("CLUSTER KEYSLOT %s = %d, keySlot says %d", key, got, want)
	}
}

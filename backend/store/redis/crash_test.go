package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// TestCrashLosesNoAcknowledgedWrite kills redis-server with SIGKILL while
// writers create patients and append medications, restarts it on the same
// directory and checks that every write acknowledged to a writer survived
// and every record decodes whole. It needs appendonly yes and appendfsync
// always, the production setting for zero loss.
func TestCrashLosesNoAcknowledgedWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	addr, srv := redistest.StartServer(t, redistest.AppendOnly(true), redistest.AppendFsync("always"))
	s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	warnings, err := s.CheckDurability(t.Context())
	if err != nil || len(warnings) != 0 {
		t.Fatalf("CheckDurability on appendfsync always = %q, %v; want no warnings", warnings, err)
	}

	// acked[patient] is how many medications the writer was told were
	// stored (-1: not created yet); a record must hold at least those.
	const writers = 8
	type ack struct {
		patient string
		meds    int
	}
	var (
		mu        sync.Mutex
		acked     = map[string]int{}
		ackCount  atomic.Int64
		failCount atomic.Int64
		crashed   = make(chan struct{})
		wg        sync.WaitGroup
	)
	record := func(a ack) {
		mu.Lock()
		acked[a.patient] = a.meds
		mu.Unlock()
		ackCount.Add(1)
	}
	ctx := context.Background()
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-crashed:
					return
				default:
				}
				id := fmt.Sprintf("pat-w%d-%04d", w, i)
				if err := s.CreatePatient(ctx, storetest.SamplePatient(id, "ph-crash", 0)); err != nil {
					failCount.Add(1)
					continue
				}
				record(ack{id, 0})
				for m := range 3 {
					_, err := s.UpdatePatient(ctx, id, func(p store.Patient) (store.Patient, error) {
						p.Medications = append(p.Medications, store.Medication{ID: fmt.Sprintf("med-%d", m+1), Name: "Lisinopril", Strength: "10 mg tablet"})
						return p, nil
					})
					if err != nil {
						failCount.Add(1)
						break
					}
					record(ack{id, m + 1})
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	srv.Kill()
	time.Sleep(100 * time.Millisecond) // writers see the dead server
	close(crashed)
	wg.Wait()
	srv.Restart()

	// Every acknowledged write is there.
	lost := 0
	for id, meds := range acked {
		p, err := s.GetPatient(ctx, id)
		if err != nil {
			t.Errorf("acknowledged patient %s: %v", id, err)
			lost++
			continue
		}
		var ids []string
		for _, m := range p.Medications {
			ids = append(ids, m.ID)
		}
		for m := range meds {
			if !slices.Contains(ids, fmt.Sprintf("med-%d", m+1)) {
				t.Errorf("patient %s: acknowledged medication med-%d missing (has %v)", id, m+1, ids)
				lost++
			}
		}
		if p.Version != int64(len(p.Medications))+1 {
			t.Errorf("patient %s: version %d with %d medications", id, p.Version, len(p.Medications))
		}
	}
	// Every record on disk decodes whole, acknowledged or not.
	keys, err := s.Client().Keys(ctx, "mtm:{p:*}").Result()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, k := range keys {
		id := strings.TrimSuffix(strings.TrimPrefix(k, "mtm:{p:"), "}")
		if _, err := s.GetPatient(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("record %s after restart: %v", k, err)
			continue
		}
		found++
	}
	list, err := s.ListPatients(ctx, "ph-crash", "", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < len(acked) {
		t.Errorf("ListPatients after restart: %d patients, want at least the %d acknowledged", len(list), len(acked))
	}
	if ackCount.Load() == 0 || failCount.Load() == 0 {
		t.Fatalf("the crash did not happen mid-flight: %d acknowledged, %d failed writes", ackCount.Load(), failCount.Load())
	}
	t.Logf("acknowledged writes %d (%d patients), failed writes %d, patient records found %d, acknowledged writes lost %d",
		ackCount.Load(), len(acked), failCount.Load(), found, lost)
}

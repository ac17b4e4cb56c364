package redisstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// TestMemoryPerPatient stores n 20-medication patients and reports the
// Redis memory they take: MEMORY USAGE of one record key and the growth of
// INFO used_memory per patient (record plus its pharmacy-index entry).
func TestMemoryPerPatient(t *testing.T) {
	const n = 2000
	addr, _ := redistest.StartServer(t)
	s, err := redisstore.Open(t.Context(), redisstore.Config{Addrs: []string{addr}}, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	before := usedMemory(t, s)
	for i := range n {
		if err := s.CreatePatient(ctx, storetest.SamplePatient(fmt.Sprintf("pat-%06d", i), "ph-1", 20)); err != nil {
			t.Fatal(err)
		}
	}
	// The creates' operation replies expire within seconds; count what stays.
	keys, _ := s.Client().Keys(ctx, "mtm:*:op:*").Result()
	if len(keys) > 0 {
		if err := s.Client().Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	after := usedMemory(t, s)
	perPatient := float64(after-before) / n
	one, err := s.Client().MemoryUsage(ctx, "mtm:{p:pat-000001}").Result()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.Client().StrLen(ctx, "mtm:{p:pat-000001}").Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("20-medication patient: encoded record %d bytes, MEMORY USAGE %d bytes, used_memory growth %.0f bytes/patient over %d patients",
		raw, one, perPatient, n)
	if perPatient > 16<<10 {
		t.Errorf("%.0f bytes per patient, want under 16 KiB (DESIGN.md budgets about 5 KB)", perPatient)
	}
}

func usedMemory(t *testing.T, s *redisstore.Store) int64 {
	t.Helper()
	info, err := s.Client().Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

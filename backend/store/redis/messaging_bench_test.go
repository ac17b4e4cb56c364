package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
	redisstore "github.com/mtmapp/mtm/backend/store/redis"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// BenchmarkAppendMessage appends messages to one thread on a private
// single-node Redis, a pharmacist's reply and a caregiver's question in
// turn, so that every message moves the thread to another inbox (as in a
// conversation). It reports this process's and Redis's CPU per message.
// Compare commits back to back:
//
//	go test ./backend/store/redis -run '^$' -bench AppendMessage -count 6
func BenchmarkAppendMessage(b *testing.B) {
	ctx := context.Background()
	addr, _ := redistest.StartServer(b)
	s, err := redisstore.Open(ctx, redisstore.Config{Addrs: []string{addr}}, redisstore.Options{KEK: redistest.KEK()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	th := store.Thread{ID: "th-1", PatientID: "pat-a", PharmacyID: "ph-1", Subject: "Ibuprofen?", StartedBy: "cg-1",
		State: store.ThreadOpen, StateSince: t0, CreatedAt: t0, UpdatedAt: t0}
	first := store.Message{ClientMessageID: "cm-0", AuthorID: "cg-1", AuthorRole: store.RoleCaregiver, Body: "Can Dad take ibuprofen?", SentAt: t0}
	if _, _, _, err := s.CreateThread(ctx, th, first); err != nil {
		b.Fatal(err)
	}
	appendOne := func(i int) {
		at := t0.Add(time.Duration(i+1) * time.Second)
		m := store.Message{ClientMessageID: "cm-" + strconv.Itoa(i), AuthorID: "cg-1", AuthorRole: store.RoleCaregiver, Body: "And at night?", SentAt: at}
		state := store.ThreadOpen
		if i%2 == 0 {
			m.AuthorID, m.AuthorRole, m.Body, state = "rph-1", store.RolePharmacist, "Yes, with food.", store.ThreadAnswered
		}
		if _, _, created, err := s.AppendMessage(ctx, "th-1", m, func(t store.Thread) (store.Thread, error) {
			t.State, t.StateSince, t.UpdatedAt = state, at, at
			return t, nil
		}); err != nil || !created {
			b.Fatalf("append %d: created %v, %v", i, created, err)
		}
	}
	for i := range 20 { // warm up: scripts, the thread's data key
		appendOne(-i - 1)
	}
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	cpu0, rcpu0 := storetest.ProcessCPU(b), redistest.CPUTime(b, rc)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		appendOne(i)
	}
	b.StopTimer()
	cpu, rcpu := storetest.ProcessCPU(b)-cpu0, redistest.CPUTime(b, rc)-rcpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(rcpu.Microseconds())/float64(b.N), "redis-cpu-µs/msg")
}

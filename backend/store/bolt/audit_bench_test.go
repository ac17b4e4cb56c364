package bolt

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/storetest"
)

// BenchmarkAuditAppendManyPatients appends read events to the windows of
// 10,000 patients that already hold some, from 8 goroutines at once (the
// reads of a morning open share commits), durable (fsynced). Besides the
// time and the process's CPU time per event it reports the bbolt pages
// written per event: what each event costs the disk, however noisy the
// machine.
func BenchmarkAuditAppendManyPatients(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "mtm.db"), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := b.Context()
	const patients = 10000
	base := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var seq atomic.Int64
	event := func(i int64) store.AuditEvent {
		at := base.Add(time.Duration(i) * time.Millisecond)
		return store.AuditEvent{ID: fmt.Sprintf("%016x%08x", at.UnixNano(), i), Time: at, PatientID: fmt.Sprintf("pat-%05d", i%patients),
			ActorID: fmt.Sprintf("pat-%05d", i%patients), Procedure: "/mtm.v1.PatientService/GetMedicationList", Allowed: true, Code: "ok"}
	}
	// Three events per patient already (an app open's reads).
	for range 3 * patients {
		if err := s.AppendAuditEvent(ctx, event(seq.Add(1)), 1000); err != nil {
			b.Fatal(err)
		}
	}
	pages := func() int64 { st := s.db.Stats(); return st.TxStats.GetWrite() }
	written := pages()
	b.SetParallelism(4) // 8 appenders on 2 cores
	b.ResetTimer()
	cpu := storetest.ReportCPU(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.AppendAuditEvent(ctx, event(seq.Add(7919)), 1000); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu()
	b.ReportMetric(float64(pages()-written)/float64(b.N), "pages/event")
}

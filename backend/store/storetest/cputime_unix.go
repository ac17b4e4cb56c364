//go:build unix

package storetest

import (
	"syscall"
	"testing"
	"time"
)

// ReportCPU adds a cpu-ns/op metric to a benchmark: the user and system
// CPU this process spent per iteration. On a shared machine it varies
// less than ns/op, which includes waiting for a CPU. Call the returned
// function when the timed loop ends.
func ReportCPU(b *testing.B) func() {
	b.Helper()
	start := ProcessCPU(b)
	return func() {
		b.ReportMetric(float64(ProcessCPU(b)-start)/float64(b.N), "cpu-ns/op")
	}
}

// ProcessCPU is the user and system CPU time this process has used.
func ProcessCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package procs_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mtmapp/mtm/loadtest/procs"
)

func TestCPUTimeOfThisProcessGrows(t *testing.T) {
	before, err := procs.CPUTimeOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	after, err := procs.CPUTimeOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time went from %s to %s after 100ms of spinning (%d)", before, after, x)
	}
}

func TestStartRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	r, err := procs.StartRedis(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CPUTime(); err != nil {
		t.Error(err)
	}
	if err := r.Stop(5 * time.Second); err != nil {
		t.Error(err)
	}
	if !r.Exited() {
		t.Error("redis-server still running after Stop")
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/demo"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// healthOf returns the gRPC health status of every service ("" first).
func healthOf(t *testing.T, base string) []grpchealth.Status {
	t.Helper()
	c := grpchealth.NewClient(h2cClient(), base, connect.WithGRPC())
	var out []grpchealth.Status
	for _, s := range append([]string{""}, api.ServiceNames...) {
		res, err := c.Check(context.Background(), &grpchealth.CheckRequest{Service: s})
		if err != nil {
			t.Fatalf("health Check(%q): %v", s, err)
		}
		out = append(out, res.Status)
	}
	return out
}

func allAre(got []grpchealth.Status, want grpchealth.Status) bool {
	for _, s := range got {
		if s != want {
			return false
		}
	}
	return true
}

// waitFor polls cond every 50 ms until it holds or within passes, and
// returns how long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestReadinessFollowsRedis stalls (SIGSTOP) and then kills a real
// redis-server under a running mtmd: readiness (/readyz and gRPC health of
// every service) fails within one check interval plus the check's
// deadline, /healthz stays ok, calls answer unavailable (which clients
// retry), not deadline_exceeded, and readiness comes back with Redis.
func TestReadinessFollowsRedis(t *testing.T) {
	_, redis := redistest.StartServer(t)
	const interval, deadline = 250 * time.Millisecond, 500 * time.Millisecond
	srv := startServer(t, t.TempDir(), "--redis-url", "redis://"+redis.Addr(),
		"--ready-interval", interval.String(), "--ready-timeout", deadline.String())
	if code, body := get(t, srv.admin+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with Redis up = %d %q", code, body)
	}
	if got := healthOf(t, srv.api); !allAre(got, grpchealth.StatusServing) {
		t.Fatalf("health with Redis up = %v", got)
	}

	redis.Pause()
	took := waitFor(t, interval+deadline+time.Second, "/readyz fails while Redis is stopped", func() bool {
		code, _ := get(t, srv.admin+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	t.Logf("readiness failed %s after SIGSTOP (interval %s, deadline %s)", took.Round(10*time.Millisecond), interval, deadline)
	if _, body := get(t, srv.admin+"/readyz"); !strings.Contains(body, "store: ") {
		t.Errorf("/readyz does not name the store: %q", body)
	}
	if got := healthOf(t, srv.api); !allAre(got, grpchealth.StatusNotServing) {
		t.Errorf("health with Redis stopped = %v, want NOT_SERVING for the server and every service", got)
	}
	if code, body := get(t, srv.admin+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz (liveness) with Redis stopped = %d %q, want ok", code, body)
	}
	if m := httpGet(t, srv.admin+"/metrics"); !strings.Contains(m, `mtm_ready{check="store"} 0`) {
		t.Errorf("/metrics lacks mtm_ready{check=\"store\"} 0")
	}

	authc := mtmv1connect.NewAuthServiceClient(h2cClient(), srv.api, connect.WithGRPC())
	start := time.Now()
	_, err := authc.Login(context.Background(), connect.NewRequest(&mtmv1.LoginRequest{Email: "someone@example.org", Password: "a password"}))
	if connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("Login while Redis is stopped: %v, want unavailable", err)
	}
	t.Logf("Login answered %v after %s", connect.CodeOf(err), time.Since(start).Round(10*time.Millisecond))
	if m := httpGet(t, srv.admin+"/metrics"); !strings.Contains(m, `mtm_store_errors_total{kind="unavailable",operation=`) {
		t.Errorf("/metrics does not count the store's failure by operation")
	}

	redis.Resume()
	waitFor(t, interval+deadline+2*time.Second, "/readyz recovers when Redis continues", func() bool {
		code, _ := get(t, srv.admin+"/readyz")
		return code == http.StatusOK
	})

	redis.Kill()
	took = waitFor(t, interval+deadline+time.Second, "/readyz fails once Redis is killed", func() bool {
		code, _ := get(t, srv.admin+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	t.Logf("readiness failed %s after SIGKILL", took.Round(10*time.Millisecond))
}

// TestShutdownGrace cancels run's context (what SIGTERM does in main)
// while a pharmacist watches the inbox: for the grace period health says
// NOT_SERVING and /readyz 503 while calls are still answered; then the
// watch stream ends with unavailable, not a clean end, so the app
// reconnects.
func TestShutdownGrace(t *testing.T) {
	const grace = 3 * time.Second
	srv := startServer(t, t.TempDir(), "--demo", "--shutdown-grace", grace.String())
	ctx := context.Background()
	authc := mtmv1connect.NewAuthServiceClient(h2cClient(), srv.api, connect.WithGRPC())
	login, err := authc.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
	if err != nil {
		t.Fatal(err)
	}
	token := bearerOpt(login.Msg.GetTokens().GetAccessToken())
	msg := mtmv1connect.NewMessagingServiceClient(h2cClient(), srv.api, connect.WithGRPC(), token)
	care := mtmv1connect.NewCareServiceClient(h2cClient(), srv.api, connect.WithGRPC(), token)
	stream, err := msg.WatchInbox(ctx, connect.NewRequest(&mtmv1.WatchInboxRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	waitFor(t, 5*time.Second, "the watch stream is open", func() bool {
		return strings.Contains(httpGet(t, srv.admin+"/metrics"), `mtm_rpc_open_streams{procedure="/mtm.v1.MessagingService/WatchInbox"} 1`)
	})
	ended := make(chan error, 1)
	go func() {
		for stream.Receive() {
		}
		ended <- stream.Err()
	}()

	stopped := make(chan error, 1)
	sigterm := time.Now()
	go func() { stopped <- srv.stop() }()
	waitFor(t, time.Second, "health turns NOT_SERVING", func() bool {
		return allAre(healthOf(t, srv.api), grpchealth.StatusNotServing)
	})
	if code, body := get(t, srv.admin+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("/readyz during the grace = %d %q", code, body)
	}
	if _, err := care.SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{})); err != nil {
		t.Errorf("a call during the grace: %v, want it served", err)
	}
	select {
	case err := <-ended:
		t.Fatalf("the watch stream ended %s into the %s grace: %v", time.Since(sigterm), grace, err)
	default:
	}

	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("watch stream ended with %v, want unavailable", err)
		}
		if d := time.Since(sigterm); d < grace {
			t.Errorf("watch stream ended %s after shutdown began, before the %s grace", d, grace)
		}
	case <-time.After(grace + 5*time.Second):
		t.Fatal("watch stream did not end after the grace")
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// smallDisk mounts a tmpfs of size bytes (root only; the test is skipped
// otherwise) and unmounts it when the test ends.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDiskFull fills the real disk under the embedded store: readiness
// names the disk, writes answer unavailable ("storage unavailable"), the
// log says what failed (no space left on device) and the store error
// metric counts it as a disk failure.
func TestDiskFull(t *testing.T) {
	dir := smallDisk(t, 8<<20)
	// The audit archive is on another disk, so that the store's failure is
	// the one the calls meet.
	srv := startServer(t, filepath.Join(dir, "data"), "--ready-interval", "200ms", "--disk-min-free", "1048576", "--audit-dir", t.TempDir())
	if code, _ := get(t, srv.admin+"/readyz"); code != http.StatusOK {
		t.Fatal("not ready before the disk filled")
	}
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()

	waitFor(t, 3*time.Second, "/readyz fails on a full disk", func() bool {
		code, body := get(t, srv.admin+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "disk: ")
	})
	authc := mtmv1connect.NewAuthServiceClient(h2cClient(), srv.api, connect.WithGRPC())
	var last error
	for i := range 500 {
		_, last = authc.Login(context.Background(), connect.NewRequest(&mtmv1.LoginRequest{Email: fmt.Sprintf("p%d@example.org", i), Password: "a password"}))
		if connect.CodeOf(last) != connect.CodeUnauthenticated {
			break
		}
	}
	var ce *connect.Error
	if connect.CodeOf(last) != connect.CodeUnavailable || !errors.As(last, &ce) || ce.Message() != "storage unavailable, retry later" {
		t.Fatalf("a write on a full disk: %v, want unavailable \"storage unavailable, retry later\"", last)
	}
	if !strings.Contains(srv.out.String(), "no space left on device") {
		t.Error("the log does not say the disk is full")
	}
	if m := httpGet(t, srv.admin+"/metrics"); !strings.Contains(m, `mtm_store_errors_total{kind="disk",operation=`) || !strings.Contains(m, `mtm_ready{check="disk"} 0`) {
		t.Error("/metrics does not show the disk failure")
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "/readyz recovers once space is freed", func() bool {
		code, _ := get(t, srv.admin+"/readyz")
		return code == http.StatusOK
	})
}

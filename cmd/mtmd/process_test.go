package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

// TestMain lets the tests run the test binary as mtmd itself (main, with
// its signal handling and process-wide loggers): a child started with
// MTMD_TEST_AS_MAIN=1 runs main instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("MTMD_TEST_AS_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// mtmdProcess starts the test binary as mtmd with args.
func mtmdProcess(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MTMD_TEST_AS_MAIN=1")
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, stdout, stderr
}

// nonJSONLines returns the lines of out that are not JSON objects.
func nonJSONLines(out string) []string {
	var bad []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if line := sc.Text(); json.Unmarshal([]byte(line), &m) != nil {
			bad = append(bad, line)
		}
	}
	return bad
}

// TestJSONLogsCoverEveryLine runs a real mtmd process with --log-format
// json on a real redis-server, kills Redis so that go-redis's own logger
// speaks, then sends SIGTERM: every line on stdout and stderr is JSON,
// go-redis's messages among them. A start that fails writes its fatal
// line as JSON too.
func TestJSONLogsCoverEveryLine(t *testing.T) {
	_, redis := redistest.StartServer(t)
	cmd, stdout, stderr := mtmdProcess(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--log-format", "json", "--redis-url", "redis://"+redis.Addr(), "--shutdown-grace", "0s")
	waitFor(t, 20*time.Second, "mtmd serving", func() bool { return strings.Contains(stdout.String(), `"msg":"mtmd serving"`) })
	redis.Kill()
	waitFor(t, 15*time.Second, "go-redis logs the lost server", func() bool {
		return strings.Contains(stdout.String(), `"msg":"redis client"`)
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("mtmd after SIGTERM: %v\n%s", err, stderr)
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if bad := nonJSONLines(out); len(bad) > 0 {
			t.Errorf("%s has %d lines that are not JSON, e.g. %q", name, len(bad), bad[0])
		}
	}
	if !strings.Contains(stdout.String(), `"msg":"mtmd stopped"`) {
		t.Error("no orderly stop after SIGTERM")
	}

	cmd, _, stderr = mtmdProcess(t, "--data-dir", t.TempDir(), "--redis-url", "redis://127.0.0.1:1", "--log-format=json")
	if err := cmd.Wait(); err == nil {
		t.Fatal("mtmd started without Redis")
	}
	var fatal map[string]any
	if err := json.Unmarshal(bytes.TrimSpace([]byte(stderr.String())), &fatal); err != nil || fatal["msg"] != "mtmd stopped" || fatal["level"] != "ERROR" {
		t.Errorf("fatal start-up line with --log-format=json = %q, want one JSON line", stderr.String())
	}
}

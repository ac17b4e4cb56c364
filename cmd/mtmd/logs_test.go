package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/demo"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestAccessLinesReachAPipeInOrder runs a real mtmd process whose stdout
// is a pipe, where mtmd writes its logs in batches: the access line of
// every call shows up while the server runs (an operator tailing the log
// sees it), and after SIGTERM every call's line is there, once, in the
// order of the calls, and "mtmd stopped" after them.
func TestAccessLinesReachAPipeInOrder(t *testing.T) {
	cmd, stdout, stderr := mtmdProcess(t, "--addr", "127.0.0.1:0", "--admin-addr", "", "--data-dir", t.TempDir(),
		"--log-format", "json", "--shutdown-grace", "0s")
	var addr string
	waitFor(t, 20*time.Second, "mtmd serving", func() bool {
		for _, line := range strings.Split(stdout.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "mtmd serving" {
				addr, _ = m["addr"].(string)
				return true
			}
		}
		return false
	})
	call := func(id string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/grpc.health.v1.Health/Check", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", id)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("health check %s: %s", id, res.Status)
		}
	}
	var ids []string
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("tail-%02d", i))
		call(ids[i])
	}
	waitFor(t, 10*time.Second, "the access lines while mtmd runs", func() bool {
		return strings.Contains(stdout.String(), `"request_id":"tail-19"`)
	})
	// These are answered, and mtmd is stopped at once: their lines may
	// still be in the buffer.
	for i := range 20 {
		ids = append(ids, fmt.Sprintf("stop-%02d", i))
		call(ids[len(ids)-1])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtmd after SIGTERM: %v\n%s", err, stderr)
	}
	var got []string
	stopped := false
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON (split or interleaved?)", line)
		}
		if m["msg"] == "rpc" {
			if stopped {
				t.Errorf("access line %q after mtmd stopped", line)
			}
			got = append(got, fmt.Sprint(m["request_id"]))
		}
		if m["msg"] == "mtmd stopped" {
			stopped = true
		}
	}
	if strings.Join(got, " ") != strings.Join(ids, " ") {
		t.Errorf("access lines by request id:\n got %v\nwant %v", got, ids)
	}
	if !stopped {
		t.Error(`no "mtmd stopped" line`)
	}
}

// TestAuditOnStdoutIsWrittenThrough: with --audit-sink stdout and stdout a
// file, a call's audit event is in the file when the call is answered
// (nothing is acknowledged without its trail), after the log lines written
// before it, although log lines are written in batches.
func TestAuditOnStdoutIsWrittenThrough(t *testing.T) {
	out := newLogFile(t)
	srv := startServerTo(t, out, t.TempDir(), "--demo", "--audit-sink", "stdout")
	care := mtmv1connect.NewCareServiceClient(h2cClient(), srv.api, bearerOpt(pharmacistTokens(t, srv.api).GetAccessToken()))
	if _, err := care.GetPatientRecord(context.Background(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: demo.PatientID})); err != nil {
		t.Fatal(err)
	}
	// The line numbers of the sign-in's access line and of the call's
	// audit event, in what the file holds when the call is answered.
	login, audit := -1, -1
	for n, line := range strings.Split(out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch {
		case m["msg"] == "rpc" && m["procedure"] == "/mtm.v1.AuthService/Login":
			login = n
		case m["outcome"] != nil && m["procedure"] == "/mtm.v1.CareService/GetPatientRecord" && m["patient_id"] == demo.PatientID:
			audit = n
		}
	}
	if audit < 0 {
		t.Fatalf("no audit event for GetPatientRecord in the output when the call was answered:\n%s", out)
	}
	if login < 0 || login > audit {
		t.Errorf("the sign-in's access line (logged before the audited call) is not before its audit event:\n%s", out)
	}
}

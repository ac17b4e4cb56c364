package procs_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/procs"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
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
	if m, err := r.UsedMemory(t.Context()); err != nil || m < 100<<10 {
		t.Errorf("UsedMemory = %d, %v; want the server's used_memory (at least 100 KiB)", m, err)
	}
	// Settle returns once a rewrite of the append-only file has finished.
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	val := strings.Repeat("x", 1<<10)
	for i := range 20000 {
		c.Set(t.Context(), strconv.Itoa(i), val, 0)
	}
	if err := c.BgRewriteAOF(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Settle(t.Context()); err != nil {
		t.Fatal(err)
	}
	info, err := c.InfoMap(t.Context(), "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	if p := info["Persistence"]; p["aof_rewrite_in_progress"] != "0" || p["aof_rewrites"] != "1" {
		t.Errorf("after Settle: rewrite in progress %s, rewrites done %s; want 0 and 1", p["aof_rewrite_in_progress"], p["aof_rewrites"])
	}
	if err := r.Stop(5 * time.Second); err != nil {
		t.Error(err)
	}
	if !r.Exited() {
		t.Error("redis-server still running after Stop")
	}
}

// The bare server answers Empty over h2c like mtmd, whatever the caller's
// Authorization header, and stops with its context.
func TestServeBare(t *testing.T) {
	port, err := procs.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- procs.ServeBare(ctx, addr, nil) }()
	d, err := loadtest.NewDevices("http://"+addr, loadtest.ConnectH2C, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	client := mtmv1connect.NewBenchServiceClient(d.HTTP(0), d.URL(), d.Options()...)
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err = client.Empty(t.Context(), loadtest.Authed(&mtmv1.EmptyRequest{}, "any-token"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Empty on the bare server: %v", err)
	}
	// Like mtmd, it does not gzip a small answer for a client that accepts gzip.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/mtm.v1.BenchService/Empty", strings.NewReader(""))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("Empty over HTTP/1.1: %s, Content-Encoding %q; want 200 uncompressed", res.Status, res.Header.Get("Content-Encoding"))
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeBare ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeBare did not stop with its context")
	}
}

// The bare server replays recorded answers byte for byte, by set, to
// every codec (a 20-medicine PML and a median patient's differ for the
// same procedure), and says not_found for a set it was not given. Many
// calls at once each get the whole recording: Connect pools the buffer an
// answer is written from, and a recording handed over as that buffer was
// overwritten by later calls.
func TestBareReplaysAnswers(t *testing.T) {
	meds := func(n int) *mtmv1.GetMedicationListResponse {
		res := &mtmv1.GetMedicationListResponse{MedicationList: &mtmv1.PersonalMedicationList{}, SyncVersion: 7}
		for i := range n {
			res.MedicationList.Medications = append(res.MedicationList.Medications, &mtmv1.Medication{
				Id: "md_" + strconv.Itoa(i), Name: "Medicine " + strconv.Itoa(i), HowIUseIt: strings.Repeat("one tablet by mouth ", 8)})
		}
		return res
	}
	answers := procs.Answers{}
	for set, n := range map[string]int{"pml20": 20, "open": 7} {
		b, err := proto.Marshal(meds(n))
		if err != nil {
			t.Fatal(err)
		}
		j, err := protojson.Marshal(meds(n))
		if err != nil {
			t.Fatal(err)
		}
		answers.Add(set, mtmv1connect.PatientServiceGetMedicationListProcedure, procs.Answer{Proto: b, JSON: j})
	}
	port, err := procs.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	go func() { _ = procs.ServeBare(t.Context(), addr, answers) }()
	for _, protocol := range []loadtest.Protocol{loadtest.ConnectH2C, loadtest.ConnectJSON} {
		d, err := loadtest.NewDevices("http://"+addr, protocol, 4)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		call := func(dev int, set string) (*mtmv1.GetMedicationListResponse, error) {
			client := mtmv1connect.NewPatientServiceClient(d.HTTP(dev), d.URL(), d.Options()...)
			req := loadtest.Authed(&mtmv1.GetMedicationListRequest{PatientId: "pt_other"}, "any-token")
			req.Header().Set(procs.ReplayHeader, set)
			res, err := client.GetMedicationList(t.Context(), req)
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err = call(0, "open"); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", protocol, err)
		}
		errs := make(chan error, 200)
		for k := range cap(errs) {
			go func() {
				set, n := "pml20", 20
				if k%2 == 1 {
					set, n = "open", 7
				}
				got, err := call(k%4, set)
				if err == nil && !proto.Equal(got, meds(n)) {
					err = fmt.Errorf("%s: set %s answered %d medicines, not the recording of %d", protocol, set, len(got.GetMedicationList().GetMedications()), n)
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if _, err := call(0, "nobody"); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("%s: a set never recorded answered %v, want not_found", protocol, err)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/mtmapp/mtm/backend/demo"
	"github.com/mtmapp/mtm/loadtest/procs"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// The benchmarks below drive a whole mtmd (all interceptors, info-level
// JSON logs, the embedded store) over h2c on loopback, in process. Compare
// BenchmarkStackEmpty/mtmd with BenchmarkStackEmpty/bare (connect-go with
// nothing in front, as the load test's floor) in one run; profile with
// -cpuprofile and look at what is not in the bare one. Client and server
// share the process, so ns/op and cpu-µs/op (the process's CPU time per
// call, steadier than ns/op on a busy machine) count both. mtmd logs to a
// file, as it does under the load test (and to a pipe in a container):
// each line it writes costs what writing to a descriptor costs.

// BenchmarkStackEmpty is BenchService.Empty with a signed-in caller.
func BenchmarkStackEmpty(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- procs.ServeBare(ctx, addr, nil) }()
		defer func() { cancel(); <-done }()
		url := "http://" + addr
		waitServing(b, url)
		benchEmpty(b, url, "")
	})
	b.Run("mtmd", func(b *testing.B) {
		srv := startServerTo(b, newLogFile(b), b.TempDir(), "--demo", "--bench-endpoints", "--log-level", "info")
		benchEmpty(b, srv.api, pharmacistTokens(b, srv.api).GetAccessToken())
	})
}

// BenchmarkStackRefresh is AuthService.Refresh from 16 callers at once
// (as the load test's workers), each spending the refresh token its
// previous call got (a pharmacist's, so the account is read as well).
func BenchmarkStackRefresh(b *testing.B) {
	srv := startServerTo(b, newLogFile(b), b.TempDir(), "--demo", "--log-level", "info")
	client := mtmv1connect.NewAuthServiceClient(h2cClient(), srv.api)
	const perProc = 8
	b.SetParallelism(perProc)
	sessions := make(chan string, perProc*runtime.GOMAXPROCS(0))
	for range cap(sessions) {
		sessions <- pharmacistTokens(b, srv.api).GetRefreshToken()
	}
	var failed atomic.Value
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		refresh := <-sessions
		for pb.Next() {
			res, err := client.Refresh(context.Background(), connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: refresh}))
			if err != nil {
				failed.Store(err)
				return
			}
			refresh = res.Msg.GetTokens().GetRefreshToken()
		}
	})
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// logFile is a server's output written to a file.
type logFile struct{ *os.File }

// newLogFile creates a logFile in a temporary directory; it is closed
// when the test or benchmark ends, after the server stopped.
func newLogFile(b testing.TB) logFile {
	f, err := os.Create(filepath.Join(b.TempDir(), "mtmd.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return logFile{f}
}

// String returns what the server wrote so far.
func (l logFile) String() string {
	b, err := os.ReadFile(l.Name())
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func benchEmpty(b *testing.B, url, access string) {
	client := mtmv1connect.NewBenchServiceClient(h2cClient(), url)
	var failed atomic.Value
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := connect.NewRequest(&mtmv1.EmptyRequest{})
			if access != "" {
				req.Header().Set("Authorization", "Bearer "+access)
			}
			if _, err := client.Empty(context.Background(), req); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// reportCPU starts counting the process's CPU time; the function it
// returns reports it per iteration as cpu-µs/op.
func reportCPU(b *testing.B) func() {
	start := processCPU(b)
	return func() {
		b.ReportMetric(float64((processCPU(b)-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pharmacistTokens(b testing.TB, url string) *mtmv1.TokenPair {
	b.Helper()
	res, err := mtmv1connect.NewAuthServiceClient(h2cClient(), url).Login(context.Background(),
		connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
	if err != nil {
		b.Fatal(err)
	}
	return res.Msg.GetTokens()
}

func waitServing(b *testing.B, url string) {
	client := mtmv1connect.NewBenchServiceClient(h2cClient(), url)
	for range 100 {
		if _, err := client.Empty(context.Background(), connect.NewRequest(&mtmv1.EmptyRequest{})); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("bare server did not answer")
}

// BenchmarkStackPMLRead is the demo patient reading their own 20-medicine
// Personal Medication List (as the load test's PML read): authentication,
// the access check, the audit event, the store read and the encoding.
// Compare its cpu-µs/op with BenchmarkStackEmpty/bare's in one run.
func BenchmarkStackPMLRead(b *testing.B) {
	_, patient := pmlServer(b)
	ctx := context.Background()
	var failed atomic.Value
	b.SetParallelism(8)
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := patient.GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: demo.PatientID}))
			if err == nil && len(res.Msg.GetMedicationList().GetMedications()) < 20 {
				err = fmt.Errorf("%d medicines, want 20", len(res.Msg.GetMedicationList().GetMedications()))
			}
			if err != nil {
				failed.Store(err)
				return
			}
		}
	})
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStackHandlerPML is BenchmarkStackPMLRead without the network
// and the client, as BenchmarkStackHandlerEmpty: its cpu-µs/op divided by
// BenchmarkStackHandlerEmpty/bare's is the server's cost of a PML read in
// bare empty calls, the ratio the load test's PML read rate is bound by.
func BenchmarkStackHandlerPML(b *testing.B) {
	srv, _ := pmlServer(b)
	body, err := proto.Marshal(&mtmv1.GetMedicationListRequest{PatientId: demo.PatientID})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan *httptest.ResponseRecorder)
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/mtm.v1.PatientService/GetMedicationList", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Authorization", "Bearer "+srv.patientAccess)
		go func() {
			rec := httptest.NewRecorder()
			srv.handler.ServeHTTP(rec, req)
			done <- rec
		}()
		rec := <-done
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if i == 0 { // the answer is the whole list (once: decoding is the client's cost)
			var res mtmv1.GetMedicationListResponse
			if err := proto.Unmarshal(rec.Body.Bytes(), &res); err != nil || len(res.GetMedicationList().GetMedications()) < 20 {
				b.Fatalf("%d medicines, want 20 (%v)", len(res.GetMedicationList().GetMedications()), err)
			}
		}
	}
}

// pmlTarget is a demo server whose patient holds 20 medicines, and that
// patient's access token.
type pmlTarget struct {
	running
	patientAccess string
}

// pmlServer starts a demo server, activates its patient and grows their
// list to 20 medicines; it returns the server and the patient's client.
func pmlServer(b *testing.B) (pmlTarget, mtmv1connect.PatientServiceClient) {
	srv := startServerTo(b, newLogFile(b), b.TempDir(), "--demo", "--log-level", "info")
	ctx := context.Background()
	code := regexp.MustCompile(`activation code ([0-9A-Z-]+)`).FindStringSubmatch(srv.out.String())
	if code == nil {
		b.Fatalf("no activation code in the demo output:\n%s", srv.out)
	}
	act, err := mtmv1connect.NewAuthServiceClient(h2cClient(), srv.api).ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{
		ActivationCode: code[1], DateOfBirth: demo.PatientBirthDate, DeviceName: "phone"}))
	if err != nil {
		b.Fatal(err)
	}
	care := mtmv1connect.NewCareServiceClient(h2cClient(), srv.api, bearerOpt(pharmacistTokens(b, srv.api).GetAccessToken()))
	patient := mtmv1connect.NewPatientServiceClient(h2cClient(), srv.api, bearerOpt(act.Msg.GetTokens().GetAccessToken()))
	list, err := patient.GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: demo.PatientID}))
	if err != nil {
		b.Fatal(err)
	}
	for i := len(list.Msg.GetMedicationList().GetMedications()); i < 20; i++ {
		if _, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: demo.PatientID, Medication: &mtmv1.MedicationFields{
			Name: fmt.Sprintf("Medicine %d 10 mg tablet", i), HowIUseIt: "One tablet by mouth every morning", WhyIUseIt: "Blood pressure", Prescriber: "Dr. Rivera"}})); err != nil {
			b.Fatal(err)
		}
	}
	return pmlTarget{srv, act.Msg.GetTokens().GetAccessToken()}, patient
}

// BenchmarkStackHandlerEmpty is BenchmarkStackEmpty without the network
// and the client: each call runs the API's HTTP handler (Connect protocol
// over HTTP/1.1, a signed-in caller) on a goroutine of its own, as the
// HTTP/2 server does, so cpu-µs/op is almost only the server's work, and
// far steadier than BenchmarkStackEmpty's on a shared machine. bare is
// connect-go's handler with nothing in front (the load test's floor).
func BenchmarkStackHandlerEmpty(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		mux := http.NewServeMux()
		mux.Handle(mtmv1connect.NewBenchServiceHandler(bareBench{}, connect.WithCompressMinBytes(procs.BareCompressMinBytes)))
		benchHandlerEmpty(b, mux, "")
	})
	b.Run("mtmd", func(b *testing.B) {
		srv := startServerTo(b, newLogFile(b), b.TempDir(), "--demo", "--bench-endpoints", "--log-level", "info")
		benchHandlerEmpty(b, srv.handler, pharmacistTokens(b, srv.api).GetAccessToken())
	})
}

// bareBench is BenchService answering with nothing, as the floor's.
type bareBench struct{}

func (bareBench) Empty(context.Context, *connect.Request[mtmv1.EmptyRequest]) (*connect.Response[mtmv1.EmptyResponse], error) {
	return connect.NewResponse(&mtmv1.EmptyResponse{}), nil
}

func benchHandlerEmpty(b *testing.B, h http.Handler, access string) {
	done := make(chan *httptest.ResponseRecorder)
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, "/mtm.v1.BenchService/Empty", http.NoBody)
		req.Header.Set("Content-Type", "application/proto")
		if access != "" {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			done <- rec
		}()
		if rec := <-done; rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

package scenario

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/loadtest"
	"github.com/mtmapp/mtm/loadtest/seed"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// servedEnv is an Env with one signed-in patient on a server that serves
// what mux serves.
func servedEnv(t *testing.T, mux *http.ServeMux) *Env {
	t.Helper()
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	d, err := loadtest.NewDevices(srv.URL, loadtest.ConnectH2C, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	pop := seed.Population{Patients: []seed.Patient{{ID: "pt_1", TimeZone: "UTC", DoseSchedules: []string{"ds_1"}}}}
	e, err := NewEnv(pop, d)
	if err != nil {
		t.Fatal(err)
	}
	e.patients[0].set("refresh", "access")
	return e
}

// servedPatient answers RecordDose; servedMessaging answers ListThreads.
type servedPatient struct {
	mtmv1connect.UnimplementedPatientServiceHandler
}

func (servedPatient) RecordDose(context.Context, *connect.Request[mtmv1.RecordDoseRequest]) (*connect.Response[mtmv1.RecordDoseResponse], error) {
	return connect.NewResponse(&mtmv1.RecordDoseResponse{}), nil
}

type servedMessaging struct {
	mtmv1connect.UnimplementedMessagingServiceHandler
}

func (servedMessaging) ListThreads(context.Context, *connect.Request[mtmv1.ListThreadsRequest]) (*connect.Response[mtmv1.ListThreadsResponse], error) {
	return connect.NewResponse(&mtmv1.ListThreadsResponse{}), nil
}

// A server that answers a measured feature with unimplemented fails the
// run instead of having its phase left out; one that serves both passes.
func TestRequireServedFailsOnUnimplemented(t *testing.T) {
	full := http.NewServeMux()
	full.Handle(mtmv1connect.NewPatientServiceHandler(servedPatient{}))
	full.Handle(mtmv1connect.NewMessagingServiceHandler(servedMessaging{}))
	if err := servedEnv(t, full).RequireServed(t.Context()); err != nil {
		t.Fatalf("server serving both features: %v", err)
	}

	noMessaging := http.NewServeMux()
	noMessaging.Handle(mtmv1connect.NewPatientServiceHandler(servedPatient{}))
	noMessaging.Handle(mtmv1connect.NewMessagingServiceHandler(mtmv1connect.UnimplementedMessagingServiceHandler{}))
	err := servedEnv(t, noMessaging).RequireServed(t.Context())
	if !errors.Is(err, ErrNotServed) || !strings.Contains(err.Error(), "messaging") || strings.Contains(err.Error(), "doses") {
		t.Fatalf("messaging unimplemented: %v, want ErrNotServed naming messaging only", err)
	}

	err = servedEnv(t, http.NewServeMux()).RequireServed(t.Context())
	if !errors.Is(err, ErrNotServed) || !strings.Contains(err.Error(), "messaging") || !strings.Contains(err.Error(), "doses") {
		t.Fatalf("nothing served: %v, want ErrNotServed naming both features", err)
	}
}

package api

import (
	"fmt"
	"net/http"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// ServiceNames are the fully qualified names of the services Register
// mounts, for health checking and reflection.
var ServiceNames = []string{
	mtmv1connect.AuthServiceName,
	mtmv1connect.PatientServiceName,
	mtmv1connect.CareServiceName,
	mtmv1connect.MessagingServiceName,
}

// Register builds the four mtm.v1 services and mounts them on mux. opts
// (interceptors, read limits) apply to every service; the request codecs
// (Codecs) are added, and the interceptor that maps domain errors to
// Connect codes is added innermost.
func Register(mux *http.ServeMux, c Config, opts ...connect.HandlerOption) error {
	if c.answers == nil {
		c.answers = newAnswerCache(0) // shared: CareService.DeletePatient drops PatientService's answers
	}
	authSvc, err := NewAuthService(c)
	if err != nil {
		return fmt.Errorf("api.Register: %w", err)
	}
	patientSvc, err := NewPatientService(c)
	if err != nil {
		return fmt.Errorf("api.Register: %w", err)
	}
	careSvc, err := NewCareService(c)
	if err != nil {
		return fmt.Errorf("api.Register: %w", err)
	}
	msgSvc, err := NewMessagingService(c)
	if err != nil {
		return fmt.Errorf("api.Register: %w", err)
	}
	opts = append(append(opts[:len(opts):len(opts)], codecs(c.answers)...), connect.WithInterceptors(NewErrorInterceptor(c.Logger)))
	mux.Handle(mtmv1connect.NewAuthServiceHandler(authSvc, opts...))
	mux.Handle(mtmv1connect.NewPatientServiceHandler(patientSvc, opts...))
	mux.Handle(mtmv1connect.NewCareServiceHandler(careSvc, opts...))
	mux.Handle(mtmv1connect.NewMessagingServiceHandler(msgSvc, opts...))
	return nil
}

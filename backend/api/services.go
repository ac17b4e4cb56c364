package api

import (
	"fmt"

	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// AuthService implements mtm.v1.AuthService.
type AuthService struct {
	mtmv1connect.UnimplementedAuthServiceHandler
	cfg Config
	// refresh is the refresh budget (refreshthrottle.go).
	refresh *refreshGate
}

var _ mtmv1connect.AuthServiceHandler = (*AuthService)(nil)

// NewAuthService returns the AuthService or an error naming every missing dependency.
func NewAuthService(c Config) (*AuthService, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("api.NewAuthService: %w", err)
	}
	return &AuthService{cfg: c, refresh: newRefreshGate()}, nil
}

// PatientService implements mtm.v1.PatientService.
type PatientService struct {
	mtmv1connect.UnimplementedPatientServiceHandler
	cfg Config
}

var _ mtmv1connect.PatientServiceHandler = (*PatientService)(nil)

// NewPatientService returns the PatientService or an error naming every missing dependency.
func NewPatientService(c Config) (*PatientService, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("api.NewPatientService: %w", err)
	}
	return &PatientService{cfg: c}, nil
}

// CareService implements mtm.v1.CareService.
type CareService struct {
	mtmv1connect.UnimplementedCareServiceHandler
	cfg Config
}

var _ mtmv1connect.CareServiceHandler = (*CareService)(nil)

// NewCareService returns the CareService or an error naming every missing dependency.
func NewCareService(c Config) (*CareService, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("api.NewCareService: %w", err)
	}
	return &CareService{cfg: c}, nil
}

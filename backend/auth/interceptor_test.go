package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/store"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// echoPatients answers GetProfile with the caller's principal: subject as
// patient id, pharmacy as pharmacy id, role as given name, session as
// family name.
type echoPatients struct {
	mtmv1connect.UnimplementedPatientServiceHandler
}

func (echoPatients) GetProfile(ctx context.Context, _ *connect.Request[mtmv1.GetProfileRequest]) (*connect.Response[mtmv1.GetProfileResponse], error) {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, errors.New("no principal in context"))
	}
	return connect.NewResponse(&mtmv1.GetProfileResponse{Patient: &mtmv1.Patient{
		Id: p.Subject, PharmacyId: p.PharmacyID, GivenName: string(p.Role), FamilyName: p.SessionID,
	}}), nil
}

// echoAuth answers Login (public) with the principal's subject, if any.
type echoAuth struct {
	mtmv1connect.UnimplementedAuthServiceHandler
}

func (echoAuth) Login(ctx context.Context, _ *connect.Request[mtmv1.LoginRequest]) (*connect.Response[mtmv1.LoginResponse], error) {
	p, _ := PrincipalFrom(ctx)
	return connect.NewResponse(&mtmv1.LoginResponse{AccountId: p.Subject}), nil
}

// echoMessaging streams one message whose author is the caller.
type echoMessaging struct {
	mtmv1connect.UnimplementedMessagingServiceHandler
}

func (echoMessaging) WatchThread(ctx context.Context, _ *connect.Request[mtmv1.WatchThreadRequest], stream *connect.ServerStream[mtmv1.WatchThreadResponse]) error {
	p, ok := PrincipalFrom(ctx)
	if !ok {
		return connect.NewError(connect.CodeInternal, errors.New("no principal in context"))
	}
	return stream.Send(&mtmv1.WatchThreadResponse{Message: &mtmv1.Message{AuthorId: p.Subject}})
}

// newAuthServer serves the echo services behind the interceptor over
// HTTP/2 with TLS, so both the Connect and the gRPC protocol work.
func newAuthServer(t *testing.T, f *fixture) *httptest.Server {
	t.Helper()
	ic := connect.WithInterceptors(NewInterceptor(f.tokens, []string{mtmv1connect.AuthServiceLoginProcedure}))
	mux := http.NewServeMux()
	mux.Handle(mtmv1connect.NewPatientServiceHandler(echoPatients{}, ic))
	mux.Handle(mtmv1connect.NewAuthServiceHandler(echoAuth{}, ic))
	mux.Handle(mtmv1connect.NewMessagingServiceHandler(echoMessaging{}, ic))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestInterceptor(t *testing.T) {
	f := newFixture(t)
	srv := newAuthServer(t, f)
	pharmacist := Principal{Subject: "ac_7", Role: store.RolePharmacist, PharmacyID: "ph_3", SessionID: "fam_9"}
	valid := f.issue(t, pharmacist)
	ourKey, ourKID := f.signingKey()
	expired := signES256(t, ourKey, ourKID, "at+jwt", nil, validClaims(f.clock.Now().Add(-time.Hour)))
	otherAudience, _, err := f.newTokens(t, testIssuer, "another-api").IssueAccess(pharmacist)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		authorization []string // Authorization header values
		wantOK        bool
	}{
		{"no token", nil, false},
		{"valid token", []string{"Bearer " + valid}, true},
		{"lower-case scheme", []string{"bearer " + valid}, true},
		{"expired token", []string{"Bearer " + expired}, false},
		{"other audience", []string{"Bearer " + otherAudience}, false},
		{"garbage token", []string{"Bearer not-a-token"}, false},
		{"empty bearer", []string{"Bearer "}, false},
		{"token without scheme", []string{valid}, false},
		{"basic scheme", []string{"Basic " + valid}, false},
		{"two headers", []string{"Bearer " + valid, "Bearer " + valid}, false},
		{"oversized token", []string{"Bearer " + valid + strings.Repeat("A", MaxTokenBytes)}, false},
	}
	protocols := []struct {
		name string
		opts []connect.ClientOption
	}{
		{"connect", nil},
		{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	}
	for _, proto := range protocols {
		patients := mtmv1connect.NewPatientServiceClient(srv.Client(), srv.URL, proto.opts...)
		auths := mtmv1connect.NewAuthServiceClient(srv.Client(), srv.URL, proto.opts...)
		messaging := mtmv1connect.NewMessagingServiceClient(srv.Client(), srv.URL, proto.opts...)
		for _, tc := range tests {
			t.Run(proto.name+"/"+tc.name, func(t *testing.T) {
				ctx := t.Context()

				t.Run("protected unary", func(t *testing.T) {
					req := connect.NewRequest(&mtmv1.GetProfileRequest{PatientId: "pt_1"})
					setAuthorization(req.Header(), tc.authorization)
					res, err := patients.GetProfile(ctx, req)
					if !tc.wantOK {
						assertUnauthenticated(t, err)
						return
					}
					if err != nil {
						t.Fatalf("GetProfile: %v", err)
					}
					got := Principal{
						Subject: res.Msg.Patient.Id, Role: store.Role(res.Msg.Patient.GivenName),
						PharmacyID: res.Msg.Patient.PharmacyId, SessionID: res.Msg.Patient.FamilyName,
					}
					if got != pharmacist {
						t.Errorf("handler saw principal %+v, want %+v", got, pharmacist)
					}
				})

				t.Run("protected stream", func(t *testing.T) {
					req := connect.NewRequest(&mtmv1.WatchThreadRequest{ThreadId: "th_1"})
					setAuthorization(req.Header(), tc.authorization)
					stream, err := messaging.WatchThread(ctx, req)
					if err != nil {
						t.Fatalf("WatchThread: %v", err)
					}
					defer stream.Close()
					received := stream.Receive()
					if !tc.wantOK {
						if received {
							t.Fatal("stream delivered a message without authentication")
						}
						assertUnauthenticated(t, stream.Err())
						return
					}
					if !received {
						t.Fatalf("stream: %v", stream.Err())
					}
					if got := stream.Msg().Message.AuthorId; got != pharmacist.Subject {
						t.Errorf("stream handler saw subject %q, want %q", got, pharmacist.Subject)
					}
				})

				t.Run("public", func(t *testing.T) {
					req := connect.NewRequest(&mtmv1.LoginRequest{})
					setAuthorization(req.Header(), tc.authorization)
					res, err := auths.Login(ctx, req)
					if err != nil {
						t.Fatalf("public Login refused: %v", err)
					}
					if res.Msg.AccountId != "" {
						t.Errorf("public handler saw principal %q, want none (token ignored)", res.Msg.AccountId)
					}
				})
			})
		}
	}
}

func setAuthorization(h http.Header, values []string) {
	for _, v := range values {
		h.Add("Authorization", v)
	}
}

// assertUnauthenticated checks err is the one generic unauthenticated error.
func assertUnauthenticated(t *testing.T, err error) {
	t.Helper()
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("err = %v, want a connect error", err)
	}
	if cerr.Code() != connect.CodeUnauthenticated {
		t.Fatalf("code = %v, want unauthenticated", cerr.Code())
	}
	if cerr.Message() != "missing or invalid access token" {
		t.Errorf("message %q says more than the generic one", cerr.Message())
	}
}

package main

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/demo"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestBenchEndpointsOnlyWhenAsked: the load test's empty RPC is served,
// behind authentication, with --bench-endpoints and not without it.
func TestBenchEndpointsOnlyWhenAsked(t *testing.T) {
	cases := []struct {
		name      string
		flags     []string
		signedIn  connect.Code
		anonymous connect.Code
	}{
		{"default", nil, connect.CodeUnimplemented, connect.CodeUnimplemented},
		{"--bench-endpoints", []string{"--bench-endpoints"}, 0, connect.CodeUnauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, t.TempDir(), append([]string{"--demo", "--admin-addr", ""}, tc.flags...)...)
			ctx := context.Background()
			login, err := mtmv1connect.NewAuthServiceClient(http1Client(), srv.api).Login(ctx,
				connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
			if err != nil {
				t.Fatal(err)
			}
			bench := mtmv1connect.NewBenchServiceClient(h2cClient(), srv.api)
			code := func(token string) connect.Code {
				req := connect.NewRequest(&mtmv1.EmptyRequest{})
				if token != "" {
					req.Header().Set("Authorization", "Bearer "+token)
				}
				if _, err := bench.Empty(ctx, req); err != nil {
					return connect.CodeOf(err)
				}
				return 0
			}
			if got := code(login.Msg.GetTokens().GetAccessToken()); got != tc.signedIn {
				t.Errorf("signed in: got %v, want %v", got, tc.signedIn)
			}
			if got := code(""); got != tc.anonymous {
				t.Errorf("anonymous: got %v, want %v", got, tc.anonymous)
			}
		})
	}
}

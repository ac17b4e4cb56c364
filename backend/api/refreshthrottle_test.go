package api_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestRefreshBudget: refreshes from one address are never throttled for
// succeeding, however many; 300 failures in a minute spend the address's
// budget, after which its refreshes, valid ones too, are refused with
// Retry-After until the window ends.
func TestRefreshBudget(t *testing.T) {
	e := newEnv(t)
	e.pharmacy("ph_a", "rph@a.test")
	login, err := loginWith(e.authClient(), "rph@a.test", "correct horse battery", "")
	if err != nil {
		t.Fatal(err)
	}
	refresh := login.Msg.GetTokens().GetRefreshToken()
	ctx := context.Background()
	rotate := func() error {
		res, err := e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: refresh}))
		if err == nil {
			refresh = res.Msg.GetTokens().GetRefreshToken()
		}
		return err
	}
	for i := range 310 {
		if err := rotate(); err != nil {
			t.Fatalf("successful refresh %d within one minute: %v", i+1, err)
		}
	}

	for i := range 300 {
		_, err := e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: "not-a-token"}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("failed refresh %d: %v, want unauthenticated", i+1, err)
		}
	}
	_, err = e.authClient().Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: "not-a-token"}))
	ce := wantCode(t, err, connect.CodeResourceExhausted)
	if ce.Meta().Get("Retry-After") == "" {
		t.Fatal("throttled answer carries no Retry-After")
	}
	wantCode(t, rotate(), connect.CodeResourceExhausted) // a valid token from a spent address waits

	e.clock.Advance(time.Minute)
	if err := rotate(); err != nil {
		t.Fatalf("valid refresh once the window ended: %v", err)
	}
}

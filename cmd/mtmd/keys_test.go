package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/demo"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestKeyRotationWhileServing: a key rotated into the shared key directory
// (what `mtmctl keys rotate` does) signs the running server's next tokens
// while tokens of the old key keep working; once the old key is retired,
// its tokens stop working and the JWKS no longer lists it.
func TestKeyRotationWhileServing(t *testing.T) {
	keyDir := t.TempDir()
	srv := startServer(t, t.TempDir(), "--demo", "--admin-addr", "", "--signing-key-dir", keyDir, "--key-reload", "1s")
	ctx := context.Background()
	authc := mtmv1connect.NewAuthServiceClient(http1Client(), srv.api)
	login := func() string {
		t.Helper()
		res, err := authc.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetTokens().GetAccessToken()
	}
	works := func(token string) error {
		_, err := mtmv1connect.NewCareServiceClient(http1Client(), srv.api, bearerOpt(token)).SearchPatients(ctx, connect.NewRequest(&mtmv1.SearchPatientsRequest{}))
		return err
	}
	oldToken := login()
	keys, err := auth.LoadOrCreateKeySet(keyDir, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	oldKid := keys.KeyIDs()[0]
	if err := keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	newKid := keys.KeyIDs()[0]

	// Within a reload interval, new tokens carry the new kid.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(httpGet(t, srv.api+"/.well-known/jwks.json"), newKid) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not pick up the rotated key")
		}
		time.Sleep(200 * time.Millisecond)
	}
	newToken := login()
	if got := jwtKid(t, newToken); got != newKid {
		t.Fatalf("token after rotation signed by %s, want %s", got, newKid)
	}
	if err := works(oldToken); err != nil {
		t.Fatalf("a token of the old key stopped working at rotation: %v", err)
	}

	if err := keys.Retire(t.Context(), oldKid); err != nil {
		t.Fatal(err)
	}
	for strings.Contains(httpGet(t, srv.api+"/.well-known/jwks.json"), oldKid) {
		if time.Now().After(deadline) {
			t.Fatal("the server still publishes the retired key")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := works(oldToken); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a token of the retired key: %v, want unauthenticated", err)
	}
	if err := works(newToken); err != nil {
		t.Fatalf("a token of the live key: %v", err)
	}
}

// jwtKid reads the kid from a JWT's header.
func jwtKid(t *testing.T, token string) string {
	t.Helper()
	h, err := decodeSegment(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := h["kid"].(string)
	return kid
}

func decodeSegment(seg string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestTwoInstancesShareOneRedis runs two mtmd processes' worth of server
// (two run() calls, each with its own listener and data dir) against one
// private redis-server, as a load balancer would spread a pharmacy's calls.
// A write through one instance is visible through the other at once, and a
// sign-in started on one refreshes on the other. The instances share no
// directory: the signing keys live in Redis (the default with --redis-url),
// sealed with a wrapping key file that each instance is given a copy of.
func TestTwoInstancesShareOneRedis(t *testing.T) {
	addr, _ := redistest.StartServer(t, redistest.AppendOnly(true), redistest.AppendFsync("always"))
	url := "redis://" + addr
	wrapA := filepath.Join(t.TempDir(), "wrap.key") // created by A, on an empty store
	ctx := context.Background()

	// The key-encryption key every instance is given a copy of (PHI at rest).
	kekA := filepath.Join(t.TempDir(), "phi-kek.json")
	st, _, err := backends.Open(ctx, backends.Settings{RedisURL: url, KEKFile: kekA, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bootstrap.CreatePharmacy(ctx, st, time.Now(), "Two Instance Pharmacy", "admin@two.test", "a long admin password", "Admin"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	dirA, dirB := t.TempDir(), t.TempDir()
	a := startServer(t, dirA, "--redis-url", url, "--signing-key-wrap-file", wrapA, "--kek-file", kekA, "--redis-require-durable")
	if !strings.Contains(a.out.String(), `"store":"redis"`) || !strings.Contains(a.out.String(), `"signing_keys_in":"store"`) {
		t.Fatalf("instance A is not on Redis with its signing keys in the store:\n%s", a.out)
	}
	wrap, err := os.ReadFile(wrapA)
	if err != nil {
		t.Fatalf("A did not create the wrapping key: %v", err)
	}
	wrapB := filepath.Join(t.TempDir(), "wrap.key") // B's own copy
	if err := os.WriteFile(wrapB, wrap, 0o600); err != nil {
		t.Fatal(err)
	}
	kek, err := os.ReadFile(kekA)
	if err != nil {
		t.Fatal(err)
	}
	kekB := filepath.Join(t.TempDir(), "phi-kek.json")
	if err := os.WriteFile(kekB, kek, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startServer(t, dirB, "--redis-url", url, "--signing-key-wrap-file", wrapB, "--kek-file", kekB, "--redis-require-durable")
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, "keys")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("an instance wrote a key directory in %s (%v)", dir, err)
		}
	}

	authA := mtmv1connect.NewAuthServiceClient(http1Client(), a.api)
	authB := mtmv1connect.NewAuthServiceClient(http1Client(), b.api)
	login, err := authA.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: "admin@two.test", Password: "a long admin password"}))
	if err != nil {
		t.Fatal(err)
	}
	rph := bearerOpt(login.Msg.GetTokens().GetAccessToken())
	careA := mtmv1connect.NewCareServiceClient(http1Client(), a.api, rph)
	careB := mtmv1connect.NewCareServiceClient(http1Client(), b.api, rph)

	enrolled, err := careA.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: "Ida", FamilyName: "Two", DateOfBirth: "1944-04-04", TimeZone: "America/Chicago"}))
	if err != nil {
		t.Fatal(err)
	}
	pid := enrolled.Msg.GetPatient().GetId()
	// Activate on B with the code A issued.
	act, err := authB.ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: enrolled.Msg.GetActivationCode(), DateOfBirth: "1944-04-04", DeviceName: "phone"}))
	if err != nil {
		t.Fatalf("activating on B with A's code: %v", err)
	}
	// A write on B is read on A at once.
	if _, err := careB.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pid, Medication: &mtmv1.MedicationFields{Name: "Warfarin", Strength: "5 mg", HowIUseIt: "daily"}})); err != nil {
		t.Fatal(err)
	}
	patientA := mtmv1connect.NewPatientServiceClient(http1Client(), a.api, bearerOpt(act.Msg.GetTokens().GetAccessToken()))
	pml, err := patientA.GetMedicationList(ctx, connect.NewRequest(&mtmv1.GetMedicationListRequest{PatientId: pid}))
	if err != nil {
		t.Fatal(err)
	}
	if meds := pml.Msg.GetMedicationList().GetMedications(); len(meds) != 1 || meds[0].GetName() != "Warfarin" {
		t.Fatalf("instance A reads %v after a write on B", meds)
	}
	// A stale write on A after a change on B is refused, not lost.
	med := pml.Msg.GetMedicationList().GetMedications()[0]
	change := func(c mtmv1connect.CareServiceClient, strength string) error {
		_, err := c.ChangeMedication(ctx, connect.NewRequest(&mtmv1.ChangeMedicationRequest{PatientId: pid, MedicationId: med.GetId(), ExpectedVersion: med.GetVersion(),
			Reason: "INR", Medication: &mtmv1.MedicationFields{Name: "Warfarin", Strength: strength, HowIUseIt: "daily"}}))
		return err
	}
	if err := change(careB, "7.5 mg"); err != nil {
		t.Fatal(err)
	}
	if err := change(careA, "2.5 mg"); connect.CodeOf(err) != connect.CodeAborted {
		t.Fatalf("stale write through the other instance: %v, want aborted", err)
	}
	// A patient watching a thread on A sees the pharmacist's reply sent on
	// B within moments: the instances wake each other through Redis (the
	// streams' own re-read is 15 s away).
	msgA := mtmv1connect.NewMessagingServiceClient(http1Client(), a.api, bearerOpt(act.Msg.GetTokens().GetAccessToken()))
	msgB := mtmv1connect.NewMessagingServiceClient(http1Client(), b.api, rph)
	started, err := msgA.StartThread(ctx, connect.NewRequest(&mtmv1.StartThreadRequest{PatientId: pid, Subject: "Ibuprofen?", ClientMessageId: "cm-0000001", Body: "May I take ibuprofen?"}))
	if err != nil {
		t.Fatal(err)
	}
	threadID := started.Msg.GetThread().GetId()
	watchCtx, stopWatch := context.WithTimeout(ctx, 10*time.Second)
	defer stopWatch()
	stream, err := msgA.WatchThread(watchCtx, connect.NewRequest(&mtmv1.WatchThreadRequest{ThreadId: threadID, AfterSeq: started.Msg.GetMessage().GetSeq()}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() { // the first heartbeat: the stream is live
		t.Fatalf("watch did not start: %v", stream.Err())
	}
	sent := time.Now()
	if _, err := msgB.SendMessage(ctx, connect.NewRequest(&mtmv1.SendMessageRequest{ThreadId: threadID, ClientMessageId: "cm-reply-001", Body: "Please use acetaminophen instead."})); err != nil {
		t.Fatal(err)
	}
	for stream.Receive() {
		if m := stream.Msg().GetMessage(); m != nil {
			if m.GetBody() != "Please use acetaminophen instead." {
				t.Fatalf("watcher got %q", m.GetBody())
			}
			break
		}
	}
	if d := time.Since(sent); stream.Err() != nil || d > 5*time.Second {
		t.Fatalf("reply reached the watcher on the other instance after %v (err %v)", d, stream.Err())
	}
	stream.Close()

	// A refresh token issued by B works on A, and a repeat on B within the
	// grace (a phone retrying through another instance) gets the same
	// successor.
	rt := act.Msg.GetTokens().GetRefreshToken()
	first, err := authA.Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: rt}))
	if err != nil {
		t.Fatalf("refresh on A of B's token: %v", err)
	}
	again, err := authB.Refresh(ctx, connect.NewRequest(&mtmv1.RefreshRequest{RefreshToken: rt}))
	if err != nil {
		t.Fatalf("repeat on B within the grace: %v", err)
	}
	if again.Msg.GetTokens().GetRefreshToken() != first.Msg.GetTokens().GetRefreshToken() {
		t.Fatal("a repeat on the other instance got another refresh token")
	}
}

// bearerOpt sends an access token with every call of a client, unary or
// streaming.
func bearerOpt(token string) connect.ClientOption { return connect.WithInterceptors(bearer(token)) }

type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

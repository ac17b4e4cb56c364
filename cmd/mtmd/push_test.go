package main

import (
	"context"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/demo"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestReplyPushThroughFCM runs mtmd with --push fcm pointed at the local
// FCM-compatible server: a patient registers a phone and asks a question;
// the pharmacist's reply reaches the phone as a push through the real
// Firebase SDK, without the reply's text.
func TestReplyPushThroughFCM(t *testing.T) {
	fake := fcmfake.New(fcmfake.Options{})
	fcm := httptest.NewServer(fake)
	defer fcm.Close()
	srv := startServer(t, t.TempDir(), "--demo", "--admin-addr", "", "--push", "fcm", "--fcm-project", "mtm-test", "--fcm-endpoint", fcm.URL)
	code := regexp.MustCompile(`activation code ([0-9A-Z-]+)`).FindStringSubmatch(srv.out.String())
	if code == nil {
		t.Fatalf("no activation code in the demo output:\n%s", srv.out)
	}
	ctx := context.Background()
	authc := mtmv1connect.NewAuthServiceClient(http1Client(), srv.api)
	act, err := authc.ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: code[1], DateOfBirth: demo.PatientBirthDate, DeviceName: "phone"}))
	if err != nil {
		t.Fatal(err)
	}
	patient := bearerOpt(act.Msg.GetTokens().GetAccessToken())
	pc := mtmv1connect.NewPatientServiceClient(http1Client(), srv.api, patient)
	if _, err := pc.RegisterDevice(ctx, connect.NewRequest(&mtmv1.RegisterDeviceRequest{PatientId: demo.PatientID, FcmToken: "tok-margarets-phone",
		Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_ANDROID, AppVersion: "1.0.0", Locale: "en-US"})); err != nil {
		t.Fatal(err)
	}
	started, err := mtmv1connect.NewMessagingServiceClient(http1Client(), srv.api, patient).StartThread(ctx, connect.NewRequest(&mtmv1.StartThreadRequest{
		PatientId: demo.PatientID, Subject: "Pain relief", ClientMessageId: "cm-00000001", Body: "Can I take ibuprofen with apixaban?"}))
	if err != nil {
		t.Fatal(err)
	}
	login, err := authc.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
	if err != nil {
		t.Fatal(err)
	}
	rph := mtmv1connect.NewMessagingServiceClient(http1Client(), srv.api, bearerOpt(login.Msg.GetTokens().GetAccessToken()))
	if _, err := rph.SendMessage(ctx, connect.NewRequest(&mtmv1.SendMessageRequest{ThreadId: started.Msg.GetThread().GetId(),
		ClientMessageId: "cm-reply-0001", Body: "Please avoid ibuprofen; acetaminophen is safer with apixaban."})); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range fake.Received() {
			if m.Token != "tok-margarets-phone" || m.Data["thread_id"] != started.Msg.GetThread().GetId() {
				continue
			}
			if regexp.MustCompile(`(?i)ibuprofen|acetaminophen|apixaban`).MatchString(m.Title + m.Body) {
				t.Fatalf("the push names a medicine: %q / %q", m.Title, m.Body)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no reply push reached the phone; FCM fake received %d messages", len(fake.Received()))
}

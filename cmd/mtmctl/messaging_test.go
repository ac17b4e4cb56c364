package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// TestPharmacistAnswersAQuestion runs the pharmacist's side of messaging
// end to end: a patient asks through the API, the pharmacist lists the
// inbox, reads, claims, replies and closes with mtmctl, and the patient
// reads the reply.
func TestPharmacistAnswersAQuestion(t *testing.T) {
	c, server := signedInPharmacist(t)

	out := c.mustRun("enroll", "--given", "Ruth", "--family", "Alvarez", "--dob", "1948-03-12", "--tz", "America/Chicago")
	code := codeLine.FindStringSubmatch(out)[1]
	ctx := context.Background()
	act, err := mtmv1connect.NewAuthServiceClient(http.DefaultClient, server).ActivatePatient(ctx,
		connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: code, DateOfBirth: "1948-03-12", DeviceName: "phone"}))
	if err != nil {
		t.Fatal(err)
	}
	patientID := act.Msg.GetPatientId()
	bearer := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+act.Msg.GetTokens().GetAccessToken())
			return next(ctx, req)
		}
	})
	patient := mtmv1connect.NewMessagingServiceClient(http.DefaultClient, server, connect.WithInterceptors(bearer))
	started, err := patient.StartThread(ctx, connect.NewRequest(&mtmv1.StartThreadRequest{PatientId: patientID,
		Subject: "Ibuprofen and my blood thinner", ClientMessageId: "cm_ruth_0001", Body: "Can I take ibuprofen\nfor my knee?"}))
	if err != nil {
		t.Fatal(err)
	}
	th := started.Msg.GetThread().GetId()

	out = c.mustRun("inbox")
	if !strings.Contains(out, th) || !strings.Contains(out, "Ibuprofen and my blood thinner") || !strings.Contains(out, "open") {
		t.Errorf("inbox:\n%s", out)
	}
	out = c.mustRun("thread", th)
	if !strings.Contains(out, "#1") || !strings.Contains(out, "Ruth Alvarez") || !strings.Contains(out, "    for my knee?") {
		t.Errorf("thread:\n%s", out)
	}
	if out := c.mustRun("claim", th); !strings.Contains(out, "is claimed") {
		t.Errorf("claim: %s", out)
	}
	if out := c.mustRun("reply", th, "--body", "Please use acetaminophen instead; ibuprofen raises bleeding risk."); !strings.Contains(out, "message #2") {
		t.Errorf("reply: %s", out)
	}
	c.stdin = "And call us if the pain lasts.\n"
	if out := c.mustRun("reply", th); !strings.Contains(out, "message #3") {
		t.Errorf("reply from stdin: %s", out)
	}
	if out := c.mustRun("close", th); !strings.Contains(out, "is closed") {
		t.Errorf("close: %s", out)
	}
	if out := c.mustRun("inbox", "--state", "closed"); !strings.Contains(out, th) {
		t.Errorf("closed inbox:\n%s", out)
	}
	if out := c.mustRun("inbox"); !strings.Contains(out, "no open threads") {
		t.Errorf("open inbox after close:\n%s", out)
	}
	if _, _, err := c.run("inbox", "--state", "pending"); err == nil {
		t.Error("inbox --state pending: no error")
	}

	msgs, err := patient.ListMessages(ctx, connect.NewRequest(&mtmv1.ListMessagesRequest{ThreadId: th}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(msgs.Msg.GetMessages()); n != 3 || msgs.Msg.GetMessages()[1].GetAuthorName() != "Dana Ortiz" {
		t.Fatalf("the patient sees %d messages (%v), want the question and two replies by Dana Ortiz", n, msgs.Msg.GetMessages())
	}
}

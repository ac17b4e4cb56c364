package api_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/notifications/replies"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestReplyNoticeFollowsTheGrantsAtReply: a pharmacist's reply is pushed,
// through the real Firebase SDK to the local fake, to the phones of the
// caregiver who asked and of the patient; a caregiver whose grant the
// patient revoked after asking, before the reply, gets nothing, though
// the notifier decides from the record the reply's access check read
// rather than reading it again.
func TestReplyNoticeFollowsTheGrantsAtReply(t *testing.T) {
	ctx := context.Background()
	base := newEnv(t)
	fake, sender := fakeFCM(t)
	n, err := replies.New(base.store, sender, slog.New(slog.DiscardHandler), base.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	e := instance(t, base, base.store, func(c *api.Config) { c.ReplyNotifier = n })
	rph := e.pharmacy("ph_push", "rph@push.test")
	pt := e.enroll(rph, "Ada")
	daughter := e.caregiver(pt, "daughter@push.test", allScopes())
	son := e.caregiver(pt, "son@push.test", allScopes())
	for tok, who := range map[string]string{"tok-patient": pt.token, "tok-daughter": daughter.token, "tok-son": son.token} {
		if _, err := e.patientClient(who).RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: pt.id, FcmToken: tok,
			Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_ANDROID})); err != nil {
			t.Fatal(err)
		}
	}
	fromDaughter := startThread(t, e.msgClient(daughter.token), pt.id, "cm_d_0001", "Can Mum take ibuprofen?").GetThread().GetId()
	fromSon := startThread(t, e.msgClient(son.token), pt.id, "cm_s_0001", "And paracetamol?").GetThread().GetId()
	if _, err := e.patientClient(pt.token).RevokeCaregiver(ctx, req(&mtmv1.RevokeCaregiverRequest{PatientId: pt.id, GrantId: son.grant})); err != nil {
		t.Fatal(err)
	}
	staffC := e.msgClient(rph)
	for _, tc := range []struct {
		thread string
		want   []string
	}{
		{fromDaughter, []string{"tok-daughter", "tok-patient"}},
		{fromSon, []string{"tok-patient"}}, // the son's grant is gone
	} {
		before := len(fake.Received())
		send(t, staffC, tc.thread, "cm_reply_"+tc.thread, "Please ask at the counter.")
		n.Wait()
		var tokens []string
		for _, m := range fake.Received()[before:] {
			tokens = append(tokens, m.Token)
			if m.Data["thread_id"] != tc.thread || m.Data["patient_id"] != pt.id {
				t.Errorf("push data %v, want thread %s of patient %s", m.Data, tc.thread, pt.id)
			}
		}
		slices.Sort(tokens)
		if !slices.Equal(tokens, tc.want) {
			t.Errorf("reply on %s pushed to %v, want %v", tc.thread, tokens, tc.want)
		}
	}
}

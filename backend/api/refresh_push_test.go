package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/notifications/refresh"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
)

// TestPharmacyEditWakesThePatientSide: a pharmacist's edits to the PML
// through the API reach, through the real Firebase SDK and the local FCM
// fake, the patient's phone and the caregiver's phone once, as one silent
// push naming no medicine; the patient's own edit of their preferences
// wakes nobody.
func TestPharmacyEditWakesThePatientSide(t *testing.T) {
	ctx := context.Background()
	base := newEnv(t)
	fake, sender := fakeFCM(t)
	n, err := refresh.New(base.store, sender, slog.New(slog.DiscardHandler), refresh.Options{Window: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := instance(t, base, base.store, func(c *api.Config) { c.RecordNotifier = n })
	rph := e.pharmacy("ph_push", "rph@push.test")
	pt := e.enroll(rph, "Ada")
	// (A caregiver registers a phone under the missed-dose scope.)
	cg := e.caregiver(pt, "cg@push.test", []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_PLAN, mtmv1.CaregiverScope_CAREGIVER_SCOPE_MISSED_DOSE_ALERTS})
	for tok, who := range map[string]string{"tok-patient": pt.token, "tok-caregiver": cg.token} {
		if _, err := e.patientClient(who).RegisterDevice(ctx, req(&mtmv1.RegisterDeviceRequest{PatientId: pt.id, FcmToken: tok,
			Platform: mtmv1.DevicePlatform_DEVICE_PLATFORM_IOS})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.patientClient(pt.token).UpdatePreferences(ctx, req(&mtmv1.UpdatePreferencesRequest{PatientId: pt.id, TimeZone: "America/Denver"})); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.careClient(rph).AddMedication(ctx, req(&mtmv1.AddMedicationRequest{PatientId: pt.id,
			Medication: &mtmv1.MedicationFields{Name: "Apixaban", HowIUseIt: "twice a day"}})); err != nil {
			t.Fatal(err)
		}
	}
	n.Wait()
	var tokens []string
	for _, m := range fake.Received() {
		tokens = append(tokens, m.Token)
		raw, _ := json.Marshal(m)
		if m.Notification || strings.Contains(string(raw), "Apixaban") || m.Data["type"] != "sync" || m.Data["patient_id"] != pt.id {
			t.Errorf("push to %s is not a PHI-free silent sync: %s", m.Token, raw)
		}
	}
	slices.Sort(tokens)
	if want := []string{"tok-caregiver", "tok-patient"}; !slices.Equal(tokens, want) {
		t.Fatalf("three edits pushed to %v, want one each to %v", tokens, want)
	}
}

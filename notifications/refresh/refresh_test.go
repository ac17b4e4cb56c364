package refresh_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
	"github.com/mtmapp/mtm/notifications/refresh"
)

// TestTenEditsOneSilentPushPerDevice: ten pharmacist edits to a patient's
// PML within the window reach, through the real Firebase SDK and the local
// FCM fake, each device of the patient and of the caregiver who may see the
// PML once, as a silent push: no notification, no medicine, collapsible,
// content-available for iOS. A caregiver with only the message scope gets
// nothing, and a write that changes nothing the apps sync wakes nobody.
func TestTenEditsOneSilentPushPerDevice(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fake := fcmfake.New(fcmfake.Options{})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sender, err := push.NewFCM(ctx, push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.Account{
		{ID: "ac_meds", Email: "m@family.test", Role: store.RoleCaregiver, Devices: []store.Device{{ID: "dv_m", FCMToken: "tok-meds", Platform: "ios"}}},
		{ID: "ac_chat", Email: "c@family.test", Role: store.RoleCaregiver, Devices: []store.Device{{ID: "dv_c", FCMToken: "tok-chat", Platform: "android"}}},
	} {
		if err := st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreatePatient(ctx, store.Patient{ID: "pt_1", PharmacyID: "ph_1", TimeZone: "America/Chicago",
		Devices: []store.Device{{ID: "dv_p", FCMToken: "tok-patient", Platform: "android"}},
		Grants: []store.Grant{
			{ID: "gr_m", CaregiverID: "ac_meds", Scopes: []store.Scope{store.ScopeViewMedicines}},
			{ID: "gr_c", CaregiverID: "ac_chat", Scopes: []store.Scope{store.ScopeMessage}},
		}}); err != nil {
		t.Fatal(err)
	}
	n, err := refresh.New(st, sender, slog.New(slog.DiscardHandler), refresh.Options{Window: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// What the API does around each pharmacist write.
	edit := func(fn func(*store.Patient)) {
		pv, err := st.PatientParts(ctx, "pt_1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.UpdatePatient(ctx, "pt_1", func(p store.Patient) (store.Patient, error) { fn(&p); return p, nil }); err != nil {
			t.Fatal(err)
		}
		n.RecordChanged(ctx, "pt_1", pv.Latest(store.PushedKinds...))
	}
	for i := range 10 {
		edit(func(p *store.Patient) {
			p.Medications = append(p.Medications, store.Medication{ID: "med_" + string(rune('a'+i)), Name: "Warfarin", HowIUseIt: "5 mg daily"})
		})
	}
	n.Wait()

	got := fake.Received()
	var tokens []string
	for _, m := range got {
		tokens = append(tokens, m.Token)
		raw, _ := json.Marshal(m)
		if strings.Contains(string(raw), "Warfarin") || m.Notification || m.Title != "" || m.Body != "" {
			t.Errorf("push to %s shows something or names the medicine: %s", m.Token, raw)
		}
		if m.Data["type"] != "sync" || m.Data["patient_id"] != "pt_1" || len(m.Data) != 2 {
			t.Errorf("push data %v, want type sync and the patient id only", m.Data)
		}
		if m.CollapseKey != "sync-pt_1" || m.APNsHeaders["apns-collapse-id"] != "sync-pt_1" {
			t.Errorf("push not collapsible per patient: collapse key %q, apns-collapse-id %q", m.CollapseKey, m.APNsHeaders["apns-collapse-id"])
		}
		aps, _ := m.APNsPayload["aps"].(map[string]any)
		if aps["content-available"] != float64(1) || m.APNsHeaders["apns-push-type"] != "background" || m.APNsHeaders["apns-priority"] != "5" {
			t.Errorf("APNs part %v %v is not a background push", m.APNsHeaders, m.APNsPayload)
		}
	}
	slices.Sort(tokens)
	if want := []string{"tok-meds", "tok-patient"}; !slices.Equal(tokens, want) {
		t.Fatalf("ten edits pushed to %v, want one push each to %v", tokens, want)
	}

	// A write to something the apps do not sync (a device) wakes nobody.
	fake.Reset()
	edit(func(p *store.Patient) {
		p.Devices = append(p.Devices, store.Device{ID: "dv_p2", FCMToken: "tok-tablet"})
	})
	n.Wait()
	if r := fake.Received(); len(r) != 0 {
		t.Fatalf("a write the apps do not sync sent %d pushes", len(r))
	}
}

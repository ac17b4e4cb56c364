package replies_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
	"github.com/mtmapp/mtm/notifications/fcmfake"
	"github.com/mtmapp/mtm/notifications/push"
	"github.com/mtmapp/mtm/notifications/replies"
)

// TestReplyReachesThePatientSide: a pharmacist's reply is pushed, through
// the real Firebase SDK to the local fake, to every device of the patient
// and of the caregiver who asked — with no message text — while a
// caregiver whose grant was revoked hears nothing and a dead token is
// pruned.
func TestReplyReachesThePatientSide(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fake := fcmfake.New(fcmfake.Options{UnregisteredPrefix: "gone-"})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sender, err := push.NewFCM(ctx, push.FCMConfig{ProjectID: "mtm-test", Endpoint: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}

	for _, a := range []store.Account{
		{ID: "ac_daughter", Email: "d@family.test", Role: store.RoleCaregiver, Devices: []store.Device{{ID: "dv_d", FCMToken: "tok-daughter", Platform: "ios"}}},
		{ID: "ac_son", Email: "s@family.test", Role: store.RoleCaregiver, Devices: []store.Device{{ID: "dv_s", FCMToken: "tok-son", Platform: "android"}}},
	} {
		if err := st.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreatePatient(ctx, store.Patient{ID: "pt_1", PharmacyID: "ph_1", TimeZone: "America/Chicago",
		Devices: []store.Device{{ID: "dv_p1", FCMToken: "tok-patient"}, {ID: "dv_p2", FCMToken: "gone-old-phone"}},
		Grants: []store.Grant{
			{ID: "gr_d", CaregiverID: "ac_daughter", Scopes: []store.Scope{store.ScopeMessage}},
			{ID: "gr_s", CaregiverID: "ac_son", Scopes: []store.Scope{store.ScopeMessage}, RevokedAt: now.Add(-time.Hour)},
		}}); err != nil {
		t.Fatal(err)
	}

	n, err := replies.New(st, sender, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PharmacistReplied(ctx, recorded(t, st, "pt_1"), "th_1", []string{"ac_daughter", "pt_1", "ac_son"}); err != nil {
		t.Fatal(err)
	}
	n.Wait()

	var tokens []string
	for _, m := range fake.Received() {
		tokens = append(tokens, m.Token)
		if m.Data["thread_id"] != "th_1" || m.Data["patient_id"] != "pt_1" {
			t.Errorf("push data %v lacks the ids the app needs", m.Data)
		}
		if m.Title != "Your pharmacist replied" || m.Body != "Open the app to read the answer." {
			t.Errorf("push text %q / %q", m.Title, m.Body)
		}
	}
	slices.Sort(tokens)
	if want := []string{"tok-daughter", "tok-patient"}; !slices.Equal(tokens, want) {
		t.Fatalf("pushed to %v, want %v (the revoked caregiver and the dead token get nothing)", tokens, want)
	}
	pt, err := st.GetPatient(ctx, "pt_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(pt.Devices) != 1 || pt.Devices[0].ID != "dv_p1" {
		t.Fatalf("devices after the push = %v, want the unregistered one pruned", pt.Devices)
	}
}

// TestReplyInThePatientsLanguage: the reply notice, through the real
// Firebase SDK to the local fake, is in the patient's preferred language.
func TestReplyInThePatientsLanguage(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{Logger: slog.New(slog.DiscardHandler)})
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
	if err := st.CreatePatient(ctx, store.Patient{ID: "pt_es", PharmacyID: "ph_1", PreferredLanguage: "es-MX",
		Devices: []store.Device{{ID: "dv_1", FCMToken: "tok-es"}}}); err != nil {
		t.Fatal(err)
	}
	n, err := replies.New(st, sender, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.PharmacistReplied(ctx, recorded(t, st, "pt_es"), "th_1", []string{"pt_es"}); err != nil {
		t.Fatal(err)
	}
	n.Wait()
	got := fake.Received()
	if len(got) != 1 || got[0].Title != "Su farmacéutico respondió" || got[0].Body != "Abra la aplicación para leer la respuesta." {
		t.Fatalf("pushes %+v, want one in Spanish", got)
	}
}

// recorded is the patient's stored record, as the reply's access check
// reads it.
func recorded(t *testing.T, st store.Store, id string) store.Patient {
	t.Helper()
	pt, err := st.GetPatient(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

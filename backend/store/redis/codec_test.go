package redisstore

import (
	"reflect"
	"testing"

	"github.com/mtmapp/mtm/backend/store"
)

// TestWireTypesCoverEveryField fails when a field is added to a store
// record without a wire field to carry it: Redis would silently drop it.
func TestWireTypesCoverEveryField(t *testing.T) {
	cases := []struct {
		record, wire any
		inHeader     int // fields carried outside the CBOR (Version)
		split        int // fields carried as several wire fields (QuietHours)
	}{
		{store.Patient{}, patientWire{}, 1, 1},
		{store.Medication{}, medicationWire{}, 0, 0},
		{store.MedicationChange{}, changeWire{}, 0, 0},
		{store.Allergy{}, allergyWire{}, 0, 0},
		{store.Fill{}, fillWire{}, 0, 0},
		{store.ActionItem{}, actionItemWire{}, 0, 0},
		{store.Progress{}, progressWire{}, 0, 0},
		{store.Grant{}, grantWire{}, 0, 0},
		{store.Device{}, deviceWire{}, 0, 0},
		{store.DoseSchedule{}, scheduleWire{}, 0, 0},
		{store.FollowUp{}, followUpWire{}, 0, 0},
		{store.Review{}, reviewWire{}, 0, 0},
		{store.Intervention{}, interventionWire{}, 0, 0},
		{store.SelfReport{}, selfReportWire{}, 0, 0},
		{store.Pharmacy{}, pharmacyWire{}, 0, 0},
		{store.Account{}, accountWire{}, 1, 0},
		{store.ActivationCode{}, codeWire{}, 0, 0},
		{store.RefreshToken{}, tokenWire{}, 0, 0},
		{store.Invite{}, inviteWire{}, 0, 0},
		{store.AuditEvent{}, auditWire{}, 0, 0},
	}
	for _, c := range cases {
		rt, wt := reflect.TypeOf(c.record), reflect.TypeOf(c.wire)
		t.Run(rt.Name(), func(t *testing.T) {
			if got, want := wt.NumField(), rt.NumField()-c.inHeader+c.split; got != want {
				t.Fatalf("%s has %d fields, %s carries %d: add the new field to the wire type with a new key", rt, rt.NumField(), wt, got)
			}
		})
	}
}

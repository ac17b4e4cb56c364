package store

import (
	"reflect"
	"slices"
	"testing"
)

// Every field of Patient is either followed by the change log or named
// here as not synced: a new field fails this test until someone decides
// whether a change to it must reach the apps.
func TestEveryPatientFieldIsClassified(t *testing.T) {
	synced := []string{"GivenName", "FamilyName", "DateOfBirth", "TimeZone", "QuietHours", "PushNamesMedicine",
		"PreferredLanguage", "Address", "Phone", "EmergencyContact", "PrimaryCare", "ActivatedAt",
		"Medications", "Allergies", "OtherInformation", "Fills", "ActionItems", "FollowUpPlan", "Questions", "DoseSchedules"}
	notSynced := []string{"ID", "PharmacyID", "Grants", "Devices", "FollowUps", "Reviews", "SelfReports", "CreatedAt", "UpdatedAt", "Version", "ProfileVersion",
		"Conditions", "Worklist"} // clinical conditions and work-list dates are the pharmacy's, not shown in the apps
	typ := reflect.TypeFor[Patient]()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if !slices.Contains(synced, name) && !slices.Contains(notSynced, name) {
			t.Errorf("Patient.%s is new: add it to DiffPatient (and this test's synced list) or to notSynced", name)
		}
	}
	// And each synced field really produces a change.
	base := Patient{ID: "p"}
	for _, name := range synced {
		next := base
		f := reflect.ValueOf(&next).Elem().FieldByName(name)
		switch f.Kind() {
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
			f.Index(0).FieldByName("ID").SetString("x")
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		default:
			setAny(f)
		}
		if len(DiffPatient(base, next, next.UpdatedAt)) == 0 {
			t.Errorf("a change to Patient.%s logs nothing", name)
		}
	}
}

// setAny makes a struct field non-zero by setting its first settable
// number or string.
func setAny(v reflect.Value) {
	if v.Type().String() == "time.Time" {
		v.Set(reflect.ValueOf(v.Interface()).MethodByName("AddDate").Call([]reflect.Value{reflect.ValueOf(1), reflect.ValueOf(0), reflect.ValueOf(0)})[0])
		return
	}
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Int:
			f.SetInt(1)
			return
		case reflect.String:
			f.SetString("x")
			return
		}
	}
}

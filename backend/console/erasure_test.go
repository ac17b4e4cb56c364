package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

var recordLink = regexp.MustCompile(`href="(/console/patients/pt[^"/]+)">Go to`)

// enrollThroughConsole enrolls a patient with the console's form and
// returns the record page's path.
func enrollThroughConsole(t *testing.T, b *browser, given, family, dob string) string {
	t.Helper()
	_, page := b.do("GET", "/console/patients", nil)
	res, page := b.do("POST", "/console/patients/enroll", url.Values{"csrf": {token(t, page)}, "given_name": {given}, "family_name": {family},
		"date_of_birth": {dob}, "time_zone": {"America/Chicago"}})
	m := recordLink.FindStringSubmatch(page)
	if res.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("enroll: %d\n%s", res.StatusCode, page)
	}
	return m[1]
}

// TestDeletePatientFromRecordPage: an admin deletes a patient from the
// record page after typing the family name again; a wrong name, or a
// post without the session's CSRF token, deletes nothing; a plain
// pharmacist is not offered the action.
func TestDeletePatientFromRecordPage(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	admin.signIn("rph@a.test", password)
	path := enrollThroughConsole(t, admin, "Dora", "Erasmus", "1941-02-03")

	_, page := admin.do("GET", path, nil)
	if !strings.Contains(page, `action="`+path+`/delete"`) {
		t.Fatalf("the admin's record page has no delete form:\n%s", page)
	}
	res, _ := admin.do("POST", path+"/delete", url.Values{"confirm_family_name": {"Erasmus"}})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("delete without the CSRF token: %d, want 403", res.StatusCode)
	}
	res, page = admin.do("POST", path+"/delete", url.Values{"csrf": {token(t, page)}, "confirm_family_name": {"Erasmo"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "Family name (confirmation)") {
		t.Errorf("a wrong family name: %d, want 422 naming the confirmation\n%s", res.StatusCode, page)
	}
	if res, _ := admin.do("GET", path, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("after refused deletions the record answers %d", res.StatusCode)
	}

	// A plain pharmacist of the same pharmacy sees no delete form.
	acct, err := e.store.GetAccountByEmail(context.Background(), "rph@a.test")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateAccount(context.Background(), store.Account{ID: "ac_plain", Email: "plain@a.test", DisplayName: "Plain RPh",
		PasswordHash: hash, Role: store.RolePharmacist, PharmacyID: acct.PharmacyID, CreatedAt: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	plain := e.browser()
	plain.signIn("plain@a.test", password)
	if _, page := plain.do("GET", path, nil); strings.Contains(page, "/delete\"") || !strings.Contains(page, "Erasmus") {
		t.Errorf("a plain pharmacist's record page offers deletion (or is not the record)")
	}

	_, page = admin.do("GET", path, nil)
	res, _ = admin.do("POST", path+"/delete", url.Values{"csrf": {token(t, page)}, "confirm_family_name": {"erasmus"}})
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "/console/patients?done=deleted" {
		t.Fatalf("delete: %d to %q, want 303 to the patients page", res.StatusCode, loc)
	}
	if _, page := admin.do("GET", "/console/patients?done=deleted", nil); !strings.Contains(page, "The patient was deleted") {
		t.Errorf("no confirmation on the patients page")
	}
	if res, _ := admin.do("GET", path, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("the deleted patient's record answers %d, want 404", res.StatusCode)
	}
	if strings.Contains(e.archive.String(), "Erasmus") {
		t.Error("the audit archive holds the patient's name")
	}
}

// TestSearchWithBirthDate: the search form's date of birth narrows the
// search; with a family name it is an exact lookup.
func TestSearchWithBirthDate(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn("rph@a.test", password)
	enrollThroughConsole(t, b, "Fay", "Gardner", "1950-01-02")
	enrollThroughConsole(t, b, "Gus", "Gardner", "1950-01-03")
	search := func(q, dob string) string {
		t.Helper()
		_, page := b.do("GET", "/console/patients", nil)
		res, page := b.do("POST", "/console/patients/search", url.Values{"csrf": {token(t, page)}, "q": {q}, "dob": {dob}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("search %q %q: %d\n%s", q, dob, res.StatusCode, page)
		}
		return page
	}
	if page := search("", "1950-01-03"); !strings.Contains(page, "Gus") || strings.Contains(page, "Fay") {
		t.Errorf("date of birth alone: want Gus only\n%s", page)
	}
	if page := search("GARDNER", "1950-01-02"); !strings.Contains(page, "Fay") || strings.Contains(page, "Gus") {
		t.Errorf("family name and date of birth: want Fay only\n%s", page)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPharmacistRecordsFromTheTerminal: the pharmacist's clinical steps —
// a medicine, an allergy, a fill, a CMR with its summary delivered — done
// with `mtmctl call`, and the written summary exported with `mtmctl
// export`, against a real server.
func TestPharmacistRecordsFromTheTerminal(t *testing.T) {
	c, _ := signedInPharmacist(t)
	out := c.mustRun("enroll", "--given", "Ruth", "--family", "Alvarez", "--dob", "1948-03-12", "--tz", "America/Chicago")
	patient := patientIDLine.FindStringSubmatch(out)[1]

	call := func(method string, req map[string]any) map[string]any {
		t.Helper()
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		var res map[string]any
		if err := json.Unmarshal([]byte(c.mustRun("call", method, string(body))), &res); err != nil {
			t.Fatalf("call %s printed no JSON: %v", method, err)
		}
		return res
	}
	med := call("CareService/AddMedication", map[string]any{"patientId": patient,
		"medication": map[string]any{"name": "Apixaban", "strength": "5 mg tablet", "howIUseIt": "1 tablet twice a day", "prescriberPhone": "217-555-0123"}})
	medID := med["medication"].(map[string]any)["id"].(string)
	call("CareService/AddAllergy", map[string]any{"patientId": patient, "kind": "ALLERGY_KIND_ALLERGY", "substance": "Sulfa", "reaction": "Rash"})
	call("CareService/RecordFill", map[string]any{"patientId": patient, "medicationId": medID, "filledOn": "2026-11-01", "daysSupply": 30})
	rv := call("CareService/RecordReview", map[string]any{"patientId": patient, "kind": "REVIEW_KIND_CMR", "deliveryMethod": "DELIVERY_METHOD_TELEPHONE", "reviewedOn": "2026-11-20"})
	call("CareService/RecordSummaryDelivered", map[string]any{"patientId": patient, "reviewId": rv["reviewId"], "deliveredOn": "2026-11-21",
		"method": "SUMMARY_DELIVERY_METHOD_MAIL", "recipient": "SUMMARY_RECIPIENT_PATIENT"})

	record := c.mustRun("record", patient)
	for _, want := range []string{"Apixaban", "Sulfa"} {
		if !strings.Contains(record, want) {
			t.Errorf("the record lacks %s after `call`:\n%s", want, record)
		}
	}
	pdf := filepath.Join(t.TempDir(), "summary.pdf")
	c.mustRun("export", patient, "--format", "pdf", "--out", pdf)
	if b, err := os.ReadFile(pdf); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Errorf("export wrote no PDF: %v", err)
	}
	if fi, err := os.Stat(pdf); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("the exported record is readable by others: %v", fi.Mode())
	}

	// Mistakes say what is wrong, locally or from the server.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "CareService/NoSuchMethod", "{}"}, "has no method NoSuchMethod"},
		{[]string{"call", "CareService/AddAllergy", `{"patientId": 7}`}, "not a valid mtm.v1.AddAllergyRequest"},
		{[]string{"call", "CareService/AddAllergy", `{"patientId": "` + patient + `"}`}, "substance"},
		{[]string{"call", "MessagingService/WatchInbox", "{}"}, "is a stream"},
		{[]string{"export", patient, "--format", "docx", "--out", pdf}, "not pdf or fhir"},
	} {
		_, _, err := c.run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mtmctl %s: error %v, want it to say %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// signedInPharmacist bootstraps a pharmacy on a fresh data directory,
// serves it, and signs its admin in with mtmctl; it returns the CLI with
// the session and the server's URL.
func signedInPharmacist(t *testing.T) (*cli, string) {
	t.Helper()
	dataDir := t.TempDir()
	c := newCLI(t)
	c.mustRun("bootstrap", "--data-dir", dataDir, "--pharmacy", "Riverside Pharmacy",
		"--email", "dana@example.org", "--name", "Dana Ortiz", "--password-file", writeFile(t, "correct horse battery staple\n"))
	server := serveDataDir(t, dataDir)
	c.env["MTM_TOKEN_FILE"] = filepath.Join(t.TempDir(), "session.json")
	c.env["MTM_PASSWORD"] = "correct horse battery staple"
	c.mustRun("login", "--server", server, "--email", "dana@example.org")
	return c, server
}

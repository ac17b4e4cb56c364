package main

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
)

func TestWorklistAndConditions(t *testing.T) {
	c, _ := signedInPharmacist(t)
	out := c.mustRun("enroll", "--given", "Olive", "--family", "Tester", "--dob", "1950-06-01", "--tz", "UTC")
	m := patientIDLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("enroll output:\n%s", out)
	}
	id := m[1]
	today := time.Now().UTC().Format(time.DateOnly)
	if out := c.mustRun("worklist", "cmr"); !strings.Contains(out, id) || !strings.Contains(out, "Tester, Olive") || !strings.Contains(out, "never") {
		t.Errorf("worklist cmr after enrolling:\n%s", out)
	}
	if out := c.mustRun("worklist", "below"); strings.Contains(out, id) {
		t.Errorf("worklist below with no fills:\n%s", out)
	}
	if out := c.mustRun("worklist", "followups"); strings.Contains(out, id) {
		t.Errorf("worklist followups with none scheduled:\n%s", out)
	}
	if _, _, err := c.run("worklist", "everything"); err == nil || !strings.Contains(err.Error(), "cmr, below, followups") {
		t.Errorf("worklist with an unknown list: %v", err)
	}

	out = c.mustRun("condition", id, "--kind", "inpatient", "--from", today, "--note", "Admitted for pneumonia")
	cm := regexp.MustCompile(`recorded inpatient (\S+)`).FindStringSubmatch(out)
	if cm == nil {
		t.Fatalf("condition output:\n%s", out)
	}
	if out := c.mustRun("record", id); !strings.Contains(out, "inpatient from "+today+", ongoing") || !strings.Contains(out, "Admitted for pneumonia") {
		t.Errorf("record with an ongoing stay:\n%s", out)
	}
	c.mustRun("end-condition", id, cm[1], "--through", today)
	if out := c.mustRun("record", id); !strings.Contains(out, "inpatient from "+today+" through "+today) {
		t.Errorf("record after the discharge:\n%s", out)
	}
	if _, _, err := c.run("end-condition", id, cm[1], "--through", today); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("ending it twice: %v", err)
	}
	if _, _, err := c.run("condition", id, "--kind", "esrd", "--from", today, "--through", today); err == nil || !strings.Contains(err.Error(), "through") {
		t.Errorf("ESRD with an end: %v", err)
	}
	c.mustRun("remove-condition", id, cm[1])
	if out := c.mustRun("record", id); strings.Contains(out, "inpatient") {
		t.Errorf("record after removing the stay:\n%s", out)
	}
}

// TestReindexRepairsRecordsWrittenBeforeTheIndex writes a patient the way
// a release without work lists did (no dates) and checks that reindex puts
// them on the lists.
func TestReindexRepairsRecordsWrittenBeforeTheIndex(t *testing.T) {
	dataDir := t.TempDir()
	c := newCLI(t)
	c.mustRun("bootstrap", "--data-dir", dataDir, "--pharmacy", "Riverside Pharmacy",
		"--email", "dana@example.org", "--name", "Dana Ortiz", "--password-file", writeFile(t, "correct horse battery staple\n"))
	open := func() *bolt.Store {
		st, err := bolt.Open(bootstrap.BoltPath(dataDir), bolt.Options{Logger: slog.New(slog.DiscardHandler), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	enrolled := time.Now().AddDate(0, -1, 0)
	if err := st.CreatePatient(t.Context(), store.Patient{ID: "pt_old", PharmacyID: "ph_old", GivenName: "Otto", TimeZone: "UTC", CreatedAt: enrolled}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := c.mustRun("reindex", "--data-dir", dataDir, "--pharmacy", "ph_old")
	if !strings.Contains(out, "reindexed 1 patients of pharmacy ph_old (1 with new work-list dates)") {
		t.Errorf("reindex output:\n%s", out)
	}
	st = open()
	defer st.Close()
	list, err := st.ListWorklist(t.Context(), "ph_old", store.WorklistCMRDue, store.DateOf(time.Now().UTC()), store.WorklistCursor{}, 10)
	if err != nil || len(list) != 1 || list[0].Due != store.DateOf(enrolled.UTC()) {
		t.Fatalf("CMR due after reindex = %+v, %v; want pt_old due since enrollment", list, err)
	}
	if _, _, err := c.run("reindex", "--data-dir", dataDir); err == nil || !strings.Contains(err.Error(), "pharmacy") {
		t.Errorf("reindex without --pharmacy: %v", err)
	}
}

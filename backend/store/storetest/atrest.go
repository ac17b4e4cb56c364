package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// RawScanner is what a backend's test harness adds to the stores it hands
// Run so that the suite can look at what the backend keeps, as it keeps
// it. RawBytes returns every byte the store holds: for bbolt the whole
// file; for Redis every key's name and DUMP, and the AOF. It may close the
// store: the suite calls it last. The at-rest cases fail on a store that
// does not implement it.
type RawScanner interface {
	RawBytes(t *testing.T) [][]byte
}

// Marker starts every clear PHI string of MarkerPatient and of the other
// records the at-rest cases write. A raw scan compares case-insensitively
// (e-mails are stored normalized to lower case).
const Marker = "Mrkzq"

// markerBirthDate is MarkerPatient's date of birth; the raw scan also looks
// for its text form.
var markerBirthDate = store.Date{Year: 1931, Month: time.July, Day: 19}

// MarkerPatient is SamplePatient(id, pharmacyID, 20) with every clear
// string that is not an id replaced by a marker (Marker, the field's path
// and the patient's id) and its own date of birth: a raw scan of a store
// that holds it must find no marker. Ids (fields ending in ID or By),
// PharmacyID and TimeZone stay as they are: ids may appear in keys.
func MarkerPatient(id, pharmacyID string) store.Patient {
	p := SamplePatient(id, pharmacyID, 20)
	markStrings(reflect.ValueOf(&p).Elem(), "Patient", id)
	p.DateOfBirth = markerBirthDate
	return p
}

// markStrings replaces, in place, every field of type string below v that
// is not an id with a marker naming its path.
func markStrings(v reflect.Value, path, tag string) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			n := f.Name
			if strings.HasSuffix(n, "ID") || strings.HasSuffix(n, "IDs") || strings.HasSuffix(n, "By") || n == "TimeZone" {
				continue
			}
			fv := v.Field(i)
			if fv.Type() == reflect.TypeFor[string]() {
				fv.SetString(fmt.Sprintf("%s %s.%s %s", Marker, path, n, tag))
				continue
			}
			markStrings(fv, path+"."+n, tag)
		}
	case reflect.Slice:
		for i := range v.Len() {
			markStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), tag)
		}
	}
}

// MarkerWorld is what SeedMarkers wrote: a marker patient with a value of
// every kind the store keeps about a patient, and a plain patient of the
// same pharmacy beside them (who must survive the marker patient's
// deletion).
type MarkerWorld struct {
	patient, other     store.Patient // as stored (Version set)
	carer, pharmacist  store.Account // as stored
	thread, otherTh    store.Thread
	messages           []store.Message
	codeHash, invHash  string
	reminders, otherRs []store.Reminder
	dose               store.DoseRecord
	audit              []store.AuditEvent
}

const (
	markerPharmacy = "ph-mark"
	markerCarerID  = "acct-caregiver-0042" // holds grant-1 of SamplePatient
)

// SeedMarkers writes the marker world through every write path that takes
// a patient's or an account's clear data: a backend's migration test
// writes it the old way, then checks it reads (CheckMarkers) and, after a
// re-encryption pass, that no marker is left (NoMarkers).
func SeedMarkers(t *testing.T, s store.Store) MarkerWorld {
	t.Helper()
	ctx := t.Context()
	var w MarkerWorld
	must(t, "CreatePharmacy", s.CreatePharmacy(ctx, store.Pharmacy{ID: markerPharmacy, Name: "Corner Pharmacy", CreatedAt: t0}))

	p := MarkerPatient("pat-mark", markerPharmacy)
	must(t, "CreatePatient", s.CreatePatient(ctx, p))
	o := SamplePatient("pat-other", markerPharmacy, 3)
	must(t, "CreatePatient", s.CreatePatient(ctx, o))
	// An update: the change log, a rewritten record.
	var err error
	w.patient, err = s.UpdatePatient(ctx, p.ID, func(p store.Patient) (store.Patient, error) {
		p.Questions = Marker + " Can I take my Mrkzq-cillin with grapefruit juice?"
		p.Medications = append(p.Medications, store.Medication{ID: "med-new", Name: Marker + " Warfarin", Strength: Marker + " 5 mg", StartedOn: store.Date{Year: 2026, Month: time.March, Day: 1}, Version: 1})
		p.Worklist = store.WorklistDates{CMRDue: store.Date{Year: 2026, Month: time.April, Day: 1}}
		return p, nil
	})
	must(t, "UpdatePatient", err)
	must(t, "SetWorklistDates", s.SetWorklistDates(ctx, p.ID, w.patient.Version, w.patient.Worklist))
	w.other, err = s.UpdatePatient(ctx, o.ID, func(p store.Patient) (store.Patient, error) {
		p.Worklist = store.WorklistDates{CMRDue: store.Date{Year: 2026, Month: time.April, Day: 2}}
		return p, nil
	})
	must(t, "UpdatePatient", err)
	must(t, "SetWorklistDates", s.SetWorklistDates(ctx, o.ID, w.other.Version, w.other.Worklist))

	w.carer = store.Account{
		ID: markerCarerID, Email: strings.ToLower(Marker) + ".carer@example.com", DisplayName: Marker + " Fiona Carer",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$4Vy2Jq4mQ3rQm2ZyUqGfQk8gU2i6b0kS7l7nYf1p9aE",
		Role:         store.RoleCaregiver, CreatedAt: t0, TOTPSecret: strings.ToUpper(Marker) + "TOTPSECRETBASE32",
		Devices:    []store.Device{{ID: "dev-c1", FCMToken: Marker + "-fcm-token", Platform: "ios", AppVersion: "2.4.1", Locale: "en-US", RegisteredAt: t0}},
		PatientIDs: []string{p.ID, o.ID},
	}
	must(t, "CreateAccount", s.CreateAccount(ctx, w.carer))
	w.carer, err = s.UpdateAccount(ctx, w.carer.ID, func(a store.Account) (store.Account, error) {
		a.DisplayName = Marker + " Fiona O'Carer"
		return a, nil
	})
	must(t, "UpdateAccount", err)
	w.pharmacist = store.Account{ID: "acct-pharm-mark", Email: strings.ToLower(Marker) + ".pharmacist@example.org", DisplayName: Marker + " Dr. Pharmacist",
		Role: store.RolePharmacist, PharmacyID: markerPharmacy, NPI: "1234567893", CreatedAt: t0, Version: 1}
	must(t, "CreateAccount", s.CreateAccount(ctx, w.pharmacist))
	w.pharmacist.Version = 1

	w.codeHash = strings.ToLower(Marker) + "-activation-code-hash"
	must(t, "PutActivationCode", s.PutActivationCode(ctx, store.ActivationCode{CodeHash: w.codeHash, PatientID: p.ID, ExpiresAt: t0.Add(48 * time.Hour), CreatedAt: t0}))
	w.invHash = strings.ToLower(Marker) + "-invite-code-hash"
	must(t, "PutInvite", s.PutInvite(ctx, invite(w.invHash, p.ID)))
	for _, key := range []string{"signin:" + w.carer.Email, "signin-addr:203.0.113.7|" + w.pharmacist.Email} {
		if _, _, err := s.Allow(ctx, key, 5, time.Hour, t0); err != nil {
			t.Fatalf("Allow: %v", err)
		}
	}

	for i, outcome := range []store.AuditOutcome{store.OutcomeAllowed, store.OutcomeDenied} {
		ev := store.AuditEvent{
			ID: fmt.Sprintf("01JD8Y3Q2W-mark-%d", i), Time: t0.Add(time.Duration(i) * time.Minute),
			ActorID: w.carer.ID, ActorRole: store.RoleCaregiver, ActorName: w.carer.DisplayName, PatientID: p.ID,
			Procedure: "/mtm.v1.PatientService/GetMedicationList", Object: "med-001", Allowed: outcome == store.OutcomeAllowed,
			Outcome: outcome, Code: "ok", RequestID: "req-mark", ClientAddr: "203.0.113.7", Reason: Marker + " reason",
		}
		must(t, "AppendAuditEvent", s.AppendAuditEvent(ctx, ev, 100))
		w.audit = append(w.audit, ev)
	}

	th := store.Thread{ID: "th-mark", PatientID: p.ID, PharmacyID: markerPharmacy, Subject: Marker + " Ibuprofen with Mrkzq-warfarin?",
		StartedBy: w.carer.ID, State: store.ThreadOpen, StateSince: t0, ReadThrough: map[string]int64{w.carer.ID: 1}, CreatedAt: t0, UpdatedAt: t0}
	first := store.Message{ClientMessageID: "cm-mark-1", AuthorID: w.carer.ID, AuthorRole: store.RoleCaregiver, AuthorName: w.carer.DisplayName,
		Body: Marker + " Can Mum take ibuprofen for her knee?", SentAt: t0}
	_, m1, _, err := s.CreateThread(ctx, th, first)
	must(t, "CreateThread", err)
	reply := store.Message{ClientMessageID: "cm-mark-2", AuthorID: w.pharmacist.ID, AuthorRole: store.RolePharmacist, AuthorName: w.pharmacist.DisplayName,
		Body: Marker + " Not with warfarin: use paracetamol instead.", SentAt: t0.Add(time.Minute)}
	thread, m2, _, err := s.AppendMessage(ctx, th.ID, reply, func(t store.Thread) (store.Thread, error) {
		t.State, t.StateSince, t.ClaimedBy, t.FirstResponseAt = store.ThreadAnswered, t0.Add(time.Minute), w.pharmacist.ID, t0.Add(time.Minute)
		return t, nil
	})
	must(t, "AppendMessage", err)
	w.thread, w.messages = thread, []store.Message{m1, m2}
	oth := store.Thread{ID: "th-other", PatientID: o.ID, PharmacyID: markerPharmacy, Subject: "Refill timing", StartedBy: o.ID,
		State: store.ThreadOpen, StateSince: t0, CreatedAt: t0, UpdatedAt: t0}
	w.otherTh, _, _, err = s.CreateThread(ctx, oth, store.Message{ClientMessageID: "cm-o-1", AuthorID: o.ID, AuthorRole: store.RolePatient, Body: "When is my refill due?", SentAt: t0})
	must(t, "CreateThread", err)

	due := t0.Add(time.Hour)
	w.reminders = []store.Reminder{
		{PatientID: p.ID, Kind: store.ReminderDose, RefID: "sched-1", Occurrence: due, DueAt: due},
		{PatientID: p.ID, Kind: store.ReminderRefill, RefID: "med-001", Occurrence: due.Add(24 * time.Hour), DueAt: due},
	}
	must(t, "ScheduleReminders", s.ScheduleReminders(ctx, p.ID, w.reminders, nil))
	w.otherRs = []store.Reminder{{PatientID: o.ID, Kind: store.ReminderDose, RefID: "sched-1", Occurrence: due, DueAt: due}}
	must(t, "ScheduleReminders", s.ScheduleReminders(ctx, o.ID, w.otherRs, nil))
	w.dose = store.DoseRecord{PatientID: p.ID, OccurrenceID: w.reminders[0].OccurrenceID(), Occurrence: due, Outcome: store.DoseTaken, RecordedBy: p.ID, RecordedAt: due}
	must(t, "RecordDose", s.RecordDose(ctx, w.dose, 100))
	must(t, "AppendNotifications", s.AppendNotifications(ctx, []store.Notification{
		{PatientID: p.ID, Key: w.reminders[0].Key(), OccurrenceID: w.reminders[0].OccurrenceID(), Kind: store.ReminderDose, SentAt: due},
	}, 100))
	return w
}

// CheckMarkers fails the test unless everything SeedMarkers wrote reads
// back as written (after a re-encryption pass, say).
func CheckMarkers(t *testing.T, s store.Store, w MarkerWorld) {
	t.Helper()
	ctx := t.Context()
	for _, want := range []store.Patient{w.patient, w.other} {
		got, err := s.GetPatient(ctx, want.ID)
		must(t, "GetPatient", err)
		samePatient(t, "GetPatient "+want.ID, got, want)
	}
	found, err := s.FindPatients(ctx, markerPharmacy, w.patient.FamilyName, w.patient.DateOfBirth)
	must(t, "FindPatients", err)
	if len(found) != 1 || found[0].ID != w.patient.ID {
		t.Fatalf("FindPatients = %v, want [%s]", patientIDs(found), w.patient.ID)
	}
	for _, want := range []store.Account{w.carer, w.pharmacist} {
		got, err := s.GetAccountByEmail(ctx, strings.ToUpper(want.Email))
		must(t, "GetAccountByEmail", err)
		sameAccount(t, "GetAccountByEmail "+want.Email, got, want)
	}
	th, err := s.GetThread(ctx, w.thread.ID)
	must(t, "GetThread", err)
	sameThread(t, "GetThread", th, w.thread)
	ms, err := s.ListMessages(ctx, w.thread.ID, 0, 10)
	must(t, "ListMessages", err)
	if len(ms) != len(w.messages) {
		t.Fatalf("ListMessages: %d messages, want %d", len(ms), len(w.messages))
	}
	for i := range ms {
		sameMessage(t, "ListMessages", ms[i], w.messages[i])
	}
	// A retried message is still recognised (the idempotency entry reads).
	_, again, created, err := s.AppendMessage(ctx, w.thread.ID, store.Message{ClientMessageID: w.messages[1].ClientMessageID, AuthorID: w.messages[1].AuthorID,
		AuthorRole: store.RolePharmacist, Body: "a retry", SentAt: t0.Add(time.Hour)}, noChange)
	must(t, "AppendMessage retry", err)
	if created || again.Body != w.messages[1].Body {
		t.Fatalf("retried AppendMessage: created %v, body %q; want the original", created, again.Body)
	}
	code, err := s.GetActivationCode(ctx, w.codeHash, t0)
	must(t, "GetActivationCode", err)
	if code.PatientID != w.patient.ID {
		t.Fatalf("GetActivationCode: patient %q", code.PatientID)
	}
	evs, err := s.ListAuditEvents(ctx, w.patient.ID, "", 10)
	must(t, "ListAuditEvents", err)
	if len(evs) != len(w.audit) || evs[0].ActorName != w.carer.DisplayName || evs[0].Reason != w.audit[1].Reason {
		t.Fatalf("ListAuditEvents = %+v, want the %d events written", evs, len(w.audit))
	}
	d, err := s.GetDose(ctx, w.dose.PatientID, w.dose.OccurrenceID)
	must(t, "GetDose", err)
	if d.Outcome != w.dose.Outcome {
		t.Fatalf("GetDose: outcome %q", d.Outcome)
	}
	ns, err := s.ListNotifications(ctx, w.patient.ID, 10)
	must(t, "ListNotifications", err)
	if len(ns) != 1 {
		t.Fatalf("ListNotifications: %d, want 1", len(ns))
	}
	if _, err := s.PatientParts(ctx, w.patient.ID); err != nil {
		t.Fatalf("PatientParts: %v", err)
	}
	if got := listed(t, s, markerPharmacy, store.WorklistCMRDue, store.Date{Year: 2027, Month: time.January, Day: 1}, 10); !slices.Equal(got, []string{w.patient.ID, w.other.ID}) {
		t.Fatalf("ListWorklist = %v", got)
	}
}

func patientIDs(ps []store.Patient) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// NoMarkers fails the test if the raw bytes of s (a RawScanner) hold a
// marker or the marker birth date in clear. It may close s.
func NoMarkers(t *testing.T, s store.Store) {
	t.Helper()
	rs, ok := s.(RawScanner)
	if !ok {
		t.Fatalf("the backend's test store %T does not implement storetest.RawScanner: the suite cannot check what it keeps at rest", s)
	}
	chunks := rs.RawBytes(t)
	total := 0
	for _, c := range chunks {
		total += len(c)
	}
	if total == 0 {
		t.Fatal("RawBytes returned nothing: the scan would prove nothing")
	}
	hits, where := MarkerHits(chunks)
	for _, w := range where {
		t.Error(w)
	}
	if hits > 0 {
		t.Fatalf("%d clear markers in %d raw bytes (%d chunks)", hits, total, len(chunks))
	}
	t.Logf("0 markers in %d raw bytes (%d chunks)", total, len(chunks))
}

// MarkerHits counts the clear markers (and marker birth dates) in raw
// bytes and describes up to 8 of them.
func MarkerHits(chunks [][]byte) (int, []string) {
	hits := 0
	var where []string
	needles := [][]byte{bytes.ToLower([]byte(Marker)), []byte(markerBirthDate.String())}
	for i, c := range chunks {
		low := bytes.ToLower(c)
		for _, n := range needles {
			for off := 0; ; {
				j := bytes.Index(low[off:], n)
				if j < 0 {
					break
				}
				at := off + j
				if hits < 8 {
					from, to := max(at-24, 0), min(at+48, len(c))
					where = append(where, fmt.Sprintf("raw chunk %d at byte %d holds %q in clear: %q", i, at, n, c[from:to]))
				}
				hits++
				off = at + len(n)
			}
		}
	}
	return hits, where
}

// reencryptAll runs a whole re-encryption pass in steps of limit and
// returns the sum of its pages and the number of steps.
func reencryptAll(t *testing.T, s store.Store, cursor string, opts store.ReencryptOptions) (store.ReencryptPage, int) {
	t.Helper()
	var sum store.ReencryptPage
	for steps := 1; steps <= 1000; steps++ {
		page, err := s.Reencrypt(t.Context(), cursor, opts)
		must(t, "Reencrypt", err)
		sum.Patients += page.Patients
		sum.Resealed += page.Resealed
		sum.Retired += page.Retired
		if page.Next == "" {
			return sum, steps
		}
		if page.Next == cursor {
			t.Fatalf("Reencrypt did not advance from cursor %q", cursor)
		}
		cursor = page.Next
	}
	t.Fatal("Reencrypt never finished its pass")
	return sum, 0
}

func sameIDs(t *testing.T, op string, got []store.Patient, want ...string) {
	t.Helper()
	if g := patientIDs(got); !slices.Equal(g, append([]string{}, want...)) {
		t.Fatalf("%s = %v, want %v", op, g, want)
	}
}

var atRestCases = []testCase{
	{"MarkersNeverStoredClear", func(t *testing.T, s store.Store) {
		SeedMarkers(t, s)
		NoMarkers(t, s)
	}},
	{"MarkersNeverStoredClearAfterRotation", func(t *testing.T, s store.Store) {
		w := SeedMarkers(t, s)
		reencryptAll(t, s, "", store.ReencryptOptions{Limit: 1, RotateDataKeys: true})
		CheckMarkers(t, s, w)
		NoMarkers(t, s)
	}},

	{"FindPatientsByFamilyNameAndBirthDate", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		dob := store.Date{Year: 1950, Month: time.May, Day: 4}
		mk := func(id, ph, family string, dob store.Date) store.Patient {
			p := SamplePatient(id, ph, 2)
			p.FamilyName, p.DateOfBirth = family, dob
			must(t, "CreatePatient", s.CreatePatient(ctx, p))
			p.Version, p.ProfileVersion = 1, 1
			return p
		}
		b := mk("pat-b", "ph-1", "Van der Berg", dob)
		a := mk("pat-a", "ph-1", "van der berg", dob)
		mk("pat-c", "ph-1", "Van der Berg", dob.AddDays(1))
		mk("pat-d", "ph-2", "Van der Berg", dob)
		mk("pat-e", "ph-1", "Vanderberg", dob)
		got, err := s.FindPatients(ctx, "ph-1", "  VAN  DER BERG ", dob)
		must(t, "FindPatients", err)
		sameIDs(t, "FindPatients", got, "pat-a", "pat-b")
		samePatient(t, "FindPatients[0]", got[0], a)
		samePatient(t, "FindPatients[1]", got[1], b)
		got, err = s.FindPatients(ctx, "ph-2", "van der berg", dob)
		must(t, "FindPatients", err)
		sameIDs(t, "FindPatients of the other pharmacy", got, "pat-d")
		got, err = s.FindPatients(ctx, "ph-1", "Van der Berg", dob.AddDays(1))
		must(t, "FindPatients", err)
		sameIDs(t, "FindPatients with the other birth date", got, "pat-c")
		got, err = s.FindPatients(ctx, "ph-1", "Van der", dob)
		must(t, "FindPatients", err)
		sameIDs(t, "FindPatients by a prefix", got)
		got, err = s.FindPatients(ctx, "ph-3", "Van der Berg", dob)
		must(t, "FindPatients", err)
		sameIDs(t, "FindPatients of an unknown pharmacy", got)
	}},
	{"FindPatientsFollowsRenamesAndBirthDates", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		dob := store.Date{Year: 1950, Month: time.May, Day: 4}
		for _, id := range []string{"pat-1", "pat-2"} {
			p := SamplePatient(id, "ph-1", 1)
			p.FamilyName, p.DateOfBirth = "Okafor", dob
			must(t, "CreatePatient", s.CreatePatient(ctx, p))
		}
		find := func(family string, dob store.Date, want ...string) {
			t.Helper()
			got, err := s.FindPatients(ctx, "ph-1", family, dob)
			must(t, "FindPatients", err)
			sameIDs(t, fmt.Sprintf("FindPatients(%q, %v)", family, dob), got, want...)
		}
		find("okafor", dob, "pat-1", "pat-2")
		_, err := s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.FamilyName = "Okafor-Smith"
			return p, nil
		})
		must(t, "UpdatePatient", err)
		find("okafor", dob, "pat-2")
		find("okafor-smith", dob, "pat-1")
		_, err = s.UpdatePatient(ctx, "pat-2", func(p store.Patient) (store.Patient, error) {
			p.DateOfBirth = dob.AddDays(-365)
			return p, nil
		})
		must(t, "UpdatePatient", err)
		find("okafor", dob)
		find("okafor", dob.AddDays(-365), "pat-2")
		// An update that leaves the name and date alone keeps the entry.
		_, err = s.UpdatePatient(ctx, "pat-1", func(p store.Patient) (store.Patient, error) {
			p.Questions = "Is it fine with coffee?"
			return p, nil
		})
		must(t, "UpdatePatient", err)
		find("OKAFOR-SMITH", dob, "pat-1")
	}},
	{"FindPatientsAtMost100", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		dob := store.Date{Year: 1940, Month: time.January, Day: 1}
		var want []string
		for i := range 103 {
			p := store.Patient{ID: fmt.Sprintf("pat-%03d", i), PharmacyID: "ph-1", GivenName: "Jo", FamilyName: "Smith", DateOfBirth: dob}
			must(t, "CreatePatient", s.CreatePatient(ctx, p))
			want = append(want, p.ID)
		}
		got, err := s.FindPatients(ctx, "ph-1", "smith", dob)
		must(t, "FindPatients", err)
		sameIDs(t, "FindPatients", got, want[:100]...)
	}},

	{"DeletePatientErasesEverything", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		w := SeedMarkers(t, s)
		erased, err := s.DeletePatient(ctx, w.patient.ID)
		must(t, "DeletePatient", err)
		if erased.PatientID != w.patient.ID || erased.PharmacyID != markerPharmacy {
			t.Fatalf("DeletePatient = %+v, want patient %s of %s", erased, w.patient.ID, markerPharmacy)
		}
		if erased.Counts["threads"] != 1 || erased.Counts["messages"] != 2 {
			t.Fatalf("DeletePatient counts %v, want 1 thread and 2 messages", erased.Counts)
		}

		_, err = s.GetPatient(ctx, w.patient.ID)
		wantErr(t, "GetPatient", err, store.ErrNotFound)
		_, err = s.PatientParts(ctx, w.patient.ID)
		wantErr(t, "PatientParts", err, store.ErrNotFound)
		_, _, err = s.PatientChanges(ctx, w.patient.ID, 0, 10)
		wantErr(t, "PatientChanges", err, store.ErrNotFound)
		_, err = s.UpdatePatient(ctx, w.patient.ID, func(p store.Patient) (store.Patient, error) { return p, nil })
		wantErr(t, "UpdatePatient", err, store.ErrNotFound)
		_, err = s.GetThread(ctx, w.thread.ID)
		wantErr(t, "GetThread", err, store.ErrNotFound)
		if ms, err := s.ListMessages(ctx, w.thread.ID, 0, 10); err != nil || len(ms) != 0 {
			t.Fatalf("ListMessages: %d messages, %v", len(ms), err)
		}
		if ts, err := s.ListPatientThreads(ctx, w.patient.ID, "", 10); err != nil || len(ts) != 0 {
			t.Fatalf("ListPatientThreads: %v, %v", threadIDs(ts), err)
		}
		for _, st := range store.ThreadStates {
			ts, err := s.ListInbox(ctx, markerPharmacy, st, "", 10)
			must(t, "ListInbox", err)
			for _, th := range ts {
				if th.ID == w.thread.ID {
					t.Fatalf("ListInbox(%s) still lists the deleted patient's thread", st)
				}
			}
		}
		feed, err := s.InboxChanges(ctx, markerPharmacy, 0, 100)
		must(t, "InboxChanges", err)
		for _, c := range feed {
			if c.Thread.PatientID == w.patient.ID || c.Thread.ID == w.thread.ID {
				t.Fatalf("InboxChanges still holds the deleted patient's thread %s", c.Thread.ID)
			}
		}
		_, err = s.GetActivationCode(ctx, w.codeHash, t0)
		wantErr(t, "GetActivationCode", err, store.ErrNotFound)
		_, err = s.ConsumeInvite(ctx, w.invHash, t0)
		wantErr(t, "ConsumeInvite", err, store.ErrNotFound)
		carer, err := s.GetAccount(ctx, w.carer.ID)
		must(t, "GetAccount", err)
		if !slices.Equal(carer.PatientIDs, []string{w.other.ID}) {
			t.Fatalf("caregiver's PatientIDs = %v, want [%s]", carer.PatientIDs, w.other.ID)
		}
		if evs, err := s.ListAuditEvents(ctx, w.patient.ID, "", 10); err != nil || len(evs) != 0 {
			t.Fatalf("ListAuditEvents: %d events, %v", len(evs), err)
		}
		if ns, err := s.ListNotifications(ctx, w.patient.ID, 10); err != nil || len(ns) != 0 {
			t.Fatalf("ListNotifications: %d, %v", len(ns), err)
		}
		_, err = s.GetDose(ctx, w.dose.PatientID, w.dose.OccurrenceID)
		wantErr(t, "GetDose", err, store.ErrNotFound)
		if got, err := s.FindPatients(ctx, markerPharmacy, w.patient.FamilyName, w.patient.DateOfBirth); err != nil || len(got) != 0 {
			t.Fatalf("FindPatients: %v, %v", patientIDs(got), err)
		}
		list, err := s.ListPatients(ctx, markerPharmacy, "", 10)
		must(t, "ListPatients", err)
		sameIDs(t, "ListPatients", list, w.other.ID)
		if got := listed(t, s, markerPharmacy, store.WorklistCMRDue, store.Date{Year: 2027, Month: time.January, Day: 1}, 10); !slices.Equal(got, []string{w.other.ID}) {
			t.Fatalf("ListWorklist = %v, want [%s]", got, w.other.ID)
		}
		rc, err := s.LoadReminderContext(ctx, w.reminders)
		must(t, "LoadReminderContext", err)
		if _, ok := rc.Patients[w.patient.ID]; ok || len(rc.Doses) != 0 {
			t.Fatalf("LoadReminderContext still finds the deleted patient (%d doses)", len(rc.Doses))
		}
		claimed := claimAll(t, s, t0.Add(48*time.Hour), time.Minute)
		if got, want := keysOf(claimed), keysOf(w.otherRs); !slices.Equal(got, want) {
			t.Fatalf("due reminders = %v, want only the other patient's %v", got, want)
		}

		// The other patient is untouched.
		got, err := s.GetPatient(ctx, w.other.ID)
		must(t, "GetPatient other", err)
		samePatient(t, "GetPatient other", got, w.other)
		th, err := s.GetThread(ctx, w.otherTh.ID)
		must(t, "GetThread other", err)
		sameThread(t, "GetThread other", th, w.otherTh)
		if ts, err := s.ListPatientThreads(ctx, w.other.ID, "", 10); err != nil || !slices.Equal(threadIDs(ts), []string{w.otherTh.ID}) {
			t.Fatalf("ListPatientThreads other: %v, %v", threadIDs(ts), err)
		}
		if _, err := s.GetAccountByEmail(ctx, w.carer.Email); err != nil {
			t.Fatalf("GetAccountByEmail of the caregiver: %v", err)
		}
	}},
	{"DeletePatientTwiceIsNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.DeletePatient(ctx, "pat-missing")
		wantErr(t, "DeletePatient of an unknown patient", err, store.ErrNotFound)
		p := SamplePatient("pat-1", "ph-1", 2)
		must(t, "CreatePatient", s.CreatePatient(ctx, p))
		keep := SamplePatient("pat-2", "ph-1", 2)
		must(t, "CreatePatient", s.CreatePatient(ctx, keep))
		_, err = s.DeletePatient(ctx, p.ID)
		must(t, "DeletePatient", err)
		_, err = s.DeletePatient(ctx, p.ID)
		wantErr(t, "DeletePatient again", err, store.ErrNotFound)
		got, err := s.GetPatient(ctx, keep.ID)
		must(t, "GetPatient of the other patient", err)
		keep.Version, keep.ProfileVersion = 1, 1
		samePatient(t, "GetPatient of the other patient", got, keep)
		// The id can be enrolled again, as a new patient with a new key.
		must(t, "CreatePatient again", s.CreatePatient(ctx, SamplePatient(p.ID, "ph-1", 1)))
		if got, err := s.GetPatient(ctx, p.ID); err != nil || len(got.Medications) != 1 {
			t.Fatalf("GetPatient of the re-enrolled patient: %d medications, %v", len(got.Medications), err)
		}
	}},

	{"ReencryptEmptyStore", func(t *testing.T, s store.Store) {
		page, err := s.Reencrypt(t.Context(), "", store.ReencryptOptions{RotateDataKeys: true})
		must(t, "Reencrypt", err)
		if page.Next != "" || page.Patients != 0 {
			t.Fatalf("Reencrypt of an empty store = %+v", page)
		}
	}},
	{"ReencryptRotationPassKeepsEverythingReadable", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		w := SeedMarkers(t, s)
		for i := range 3 {
			must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient(fmt.Sprintf("pat-x%d", i), "ph-x", 2)))
		}
		const patients = 5
		sum, steps := reencryptAll(t, s, "", store.ReencryptOptions{Limit: 2, RotateDataKeys: true})
		if sum.Patients != patients || steps < 3 {
			t.Fatalf("rotation pass went through %d patients in %d steps of 2, want %d patients", sum.Patients, steps, patients)
		}
		if sum.Resealed == 0 || sum.Retired != patients {
			t.Fatalf("rotation pass resealed %d values and retired %d key versions, want some and %d", sum.Resealed, sum.Retired, patients)
		}
		CheckMarkers(t, s, w)
		// Everything is current now: a second pass has nothing to reseal.
		sum, _ = reencryptAll(t, s, "", store.ReencryptOptions{Limit: 100})
		if sum.Patients != patients || sum.Resealed != 0 || sum.Retired != 0 {
			t.Fatalf("second pass = %+v, want %d patients, nothing resealed or retired", sum, patients)
		}
		// Writes after the pass read back.
		upd, err := s.UpdatePatient(ctx, w.patient.ID, func(p store.Patient) (store.Patient, error) {
			p.OtherInformation = "after the rotation"
			return p, nil
		})
		must(t, "UpdatePatient", err)
		got, err := s.GetPatient(ctx, w.patient.ID)
		must(t, "GetPatient", err)
		samePatient(t, "GetPatient after the rotation", got, upd)
	}},
	{"ReencryptResumesFromACursor", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const patients = 5
		for i := range patients {
			must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient(fmt.Sprintf("pat-%d", i), "ph-1", 2)))
		}
		first, err := s.Reencrypt(ctx, "", store.ReencryptOptions{Limit: 2, RotateDataKeys: true})
		must(t, "Reencrypt", err)
		if first.Patients != 2 || first.Next == "" {
			t.Fatalf("first step = %+v, want 2 patients and a cursor", first)
		}
		// An interrupted pass: the operator resumes from the last cursor
		// (after writes in between).
		_, err = s.UpdatePatient(ctx, "pat-0", func(p store.Patient) (store.Patient, error) {
			p.Questions = "between two steps"
			return p, nil
		})
		must(t, "UpdatePatient", err)
		rest, _ := reencryptAll(t, s, first.Next, store.ReencryptOptions{Limit: 2, RotateDataKeys: true})
		if first.Patients+rest.Patients != patients {
			t.Fatalf("pass resumed at %q went through %d more patients, want %d", first.Next, rest.Patients, patients-first.Patients)
		}
		for i := range patients {
			got, err := s.GetPatient(ctx, fmt.Sprintf("pat-%d", i))
			must(t, "GetPatient", err)
			if len(got.Medications) != 2 || (i == 0 && got.Questions != "between two steps") {
				t.Fatalf("pat-%d after the pass: %d medications, questions %q", i, len(got.Medications), got.Questions)
			}
		}
	}},
	{"ReencryptUnderLiveWritesLosesNothing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const patients, writes = 4, 20
		for i := range patients {
			must(t, "CreatePatient", s.CreatePatient(ctx, SamplePatient(fmt.Sprintf("pat-%d", i), "ph-1", 2)))
		}
		th, first := newThread("th-1", 0)
		_, _, _, err := s.CreateThread(ctx, th, first)
		must(t, "CreateThread", err)
		var wg sync.WaitGroup
		errs := make(chan error, 2*writes)
		wg.Go(func() {
			for i := range writes {
				_, err := s.UpdatePatient(ctx, fmt.Sprintf("pat-%d", i%patients), func(p store.Patient) (store.Patient, error) {
					p.Medications = append(p.Medications, store.Medication{ID: fmt.Sprintf("med-live-%d", i), Name: "Live", Version: 1})
					return p, nil
				})
				if err != nil {
					errs <- err
				}
				_, _, _, err = s.AppendMessage(ctx, th.ID, message("cg-1", fmt.Sprintf("cm-live-%d", i), "live", t0.Add(time.Duration(i)*time.Second)), noChange)
				if err != nil {
					errs <- err
				}
			}
		})
		for pass := 0; pass < 3; pass++ {
			reencryptAll(t, s, "", store.ReencryptOptions{Limit: 1, RotateDataKeys: pass%2 == 0})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("write during the pass: %v", err)
		}
		reencryptAll(t, s, "", store.ReencryptOptions{Limit: 1, RotateDataKeys: true})
		meds := 0
		for i := range patients {
			p, err := s.GetPatient(ctx, fmt.Sprintf("pat-%d", i))
			must(t, "GetPatient", err)
			meds += len(p.Medications) - 2
		}
		ms, err := s.ListMessages(ctx, th.ID, 0, 100)
		must(t, "ListMessages", err)
		if meds != writes || len(ms) != writes+1 {
			t.Fatalf("after the passes: %d live medicines and %d messages, want %d and %d", meds, len(ms), writes, writes+1)
		}
	}},
}

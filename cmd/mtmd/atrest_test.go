package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/demo"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// PHI at rest, end to end: a real mtmd process on each store takes, through
// the API, a patient whose every field is a marker string (names, date of
// birth, medicines, allergies, contacts, action plan, messages, a caregiver's
// e-mail and name, a device name, a self-report, a dose schedule), then
// stops. Not one marker is in the bbolt file's bytes, in any Redis key or
// value (every key, DUMPed without RDB compression) or in the append-only
// file, nor in mtmd's logs or its audit archive. Then one patient's record
// ciphertext is copied onto another patient's key by a raw write: reading
// that patient through the API answers internal, and the log says nothing
// of either patient but ids.

// markers are the strings that must never be found at rest. Each is
// random lower-case letters with no common prefix (RDB and zstd
// compression would fold a shared prefix), so a clear copy is found as is.
type markers struct {
	given, family, dob, device                string
	medicine, howUse, whyUse, prescriber      string
	allergy, reaction, address, contact       string
	talked, todo, subject, question, answer   string
	caregiverEmail, caregiverName, selfReport string
}

func newMarkers(t *testing.T) markers {
	t.Helper()
	word := func() string {
		b := make([]byte, 14)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'a' + b[i]%26
		}
		return string(b)
	}
	return markers{
		given: word(), family: word(), dob: "1931-07-19", device: word(),
		medicine: word(), howUse: word(), whyUse: word(), prescriber: word(),
		allergy: word(), reaction: word(), address: word(), contact: word(),
		talked: word(), todo: word(), subject: word(), question: word(), answer: word(),
		caregiverEmail: word() + "@" + word() + ".test", caregiverName: word(), selfReport: word(),
	}
}

func (m markers) all() []string {
	return []string{m.given, m.family, m.dob, m.device, m.medicine, m.howUse, m.whyUse, m.prescriber, m.allergy, m.reaction,
		m.address, m.contact, m.talked, m.todo, m.subject, m.question, m.answer, m.caregiverEmail, m.caregiverName, m.selfReport}
}

// found returns the markers in b, compared case-insensitively (ASCII).
func (m markers) found(b []byte) []string {
	lower := bytes.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, b)
	var out []string
	for _, s := range m.all() {
		if bytes.Contains(lower, []byte(s)) {
			out = append(out, s)
		}
	}
	return out
}

// mtmdRun is a running mtmd process.
type mtmdRun struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	base           string
}

func startMTMD(t *testing.T, args ...string) *mtmdRun {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--admin-addr", "off", "--log-format", "json", "--shutdown-grace", "0s", "--demo"}, args...)
	cmd, stdout, stderr := mtmdProcess(t, args...)
	waitFor(t, 30*time.Second, "mtmd serving", func() bool {
		return strings.Contains(stdout.String(), `"msg":"mtmd serving"`)
	})
	return &mtmdRun{cmd: cmd, stdout: stdout, stderr: stderr, base: "http://" + servingAddr(t, stdout.String())}
}

func (r *mtmdRun) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("mtmd after SIGTERM: %v\n%s", err, r.stderr)
	}
}

func (r *mtmdRun) pharmacist(t *testing.T) mtmv1connect.CareServiceClient {
	t.Helper()
	login, err := mtmv1connect.NewAuthServiceClient(http1Client(), r.base).Login(context.Background(),
		connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
	if err != nil {
		t.Fatal(err)
	}
	return mtmv1connect.NewCareServiceClient(http1Client(), r.base, bearerOpt(login.Msg.GetTokens().GetAccessToken()))
}

// populate creates, through the API, the marker patient with every kind
// of value, and a second patient; it returns both ids.
func populate(t *testing.T, r *mtmdRun, m markers) (markerID, otherID string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	care := r.pharmacist(t)
	auth := mtmv1connect.NewAuthServiceClient(http1Client(), r.base)
	enrolled, err := care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: m.given, FamilyName: m.family, DateOfBirth: m.dob, TimeZone: "America/Chicago"}))
	must(err)
	pid := enrolled.Msg.GetPatient().GetId()
	other, err := care.EnrollPatient(ctx, connect.NewRequest(&mtmv1.EnrollPatientRequest{GivenName: "Other", FamilyName: "Patient", DateOfBirth: "1950-01-01", TimeZone: "America/Chicago"}))
	must(err)
	med, err := care.AddMedication(ctx, connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: pid, Medication: &mtmv1.MedicationFields{
		Name: m.medicine, HowIUseIt: m.howUse, WhyIUseIt: m.whyUse, Prescriber: m.prescriber}}))
	must(err)
	_, err = care.AddAllergy(ctx, connect.NewRequest(&mtmv1.AddAllergyRequest{PatientId: pid, Kind: mtmv1.AllergyKind_ALLERGY_KIND_ALLERGY, Substance: m.allergy, Reaction: m.reaction}))
	must(err)
	_, err = care.SetPatientContacts(ctx, connect.NewRequest(&mtmv1.SetPatientContactsRequest{PatientId: pid, Address: m.address,
		EmergencyContact: &mtmv1.Contact{Name: m.contact, Relationship: "friend", Phone: "217-555-0101"}}))
	must(err)
	_, err = care.AddActionItem(ctx, connect.NewRequest(&mtmv1.AddActionItemRequest{PatientId: pid, WhatWeTalkedAbout: m.talked, WhatINeedToDo: m.todo}))
	must(err)

	act, err := auth.ActivatePatient(ctx, connect.NewRequest(&mtmv1.ActivatePatientRequest{ActivationCode: enrolled.Msg.GetActivationCode(), DateOfBirth: m.dob, DeviceName: m.device}))
	must(err)
	asPatient := bearerOpt(act.Msg.GetTokens().GetAccessToken())
	patient := mtmv1connect.NewPatientServiceClient(http1Client(), r.base, asPatient)
	msg := mtmv1connect.NewMessagingServiceClient(http1Client(), r.base, asPatient)
	th, err := msg.StartThread(ctx, connect.NewRequest(&mtmv1.StartThreadRequest{PatientId: pid, Subject: m.subject, ClientMessageId: "cm_marker_1", Body: m.question}))
	must(err)
	login, err := auth.Login(ctx, connect.NewRequest(&mtmv1.LoginRequest{Email: demo.PharmacistEmail, Password: demo.PharmacistPassword}))
	must(err)
	rphMsg := mtmv1connect.NewMessagingServiceClient(http1Client(), r.base, bearerOpt(login.Msg.GetTokens().GetAccessToken()))
	_, err = rphMsg.SendMessage(ctx, connect.NewRequest(&mtmv1.SendMessageRequest{ThreadId: th.Msg.GetThread().GetId(), ClientMessageId: "cm_marker_2", Body: m.answer}))
	must(err)
	_, err = patient.SetDoseSchedule(ctx, connect.NewRequest(&mtmv1.SetDoseScheduleRequest{PatientId: pid, MedicationId: med.Msg.GetMedication().GetId(), TimesOfDay: []int32{8 * 60, 20 * 60}}))
	must(err)
	_, err = patient.ReportSelfMedication(ctx, connect.NewRequest(&mtmv1.ReportSelfMedicationRequest{PatientId: pid, Kind: mtmv1.SelfMedicationKind_SELF_MEDICATION_KIND_OTC, Name: m.selfReport}))
	must(err)
	inv, err := patient.InviteCaregiver(ctx, connect.NewRequest(&mtmv1.InviteCaregiverRequest{PatientId: pid, Scopes: []mtmv1.CaregiverScope{mtmv1.CaregiverScope_CAREGIVER_SCOPE_VIEW_MEDICINES}}))
	must(err)
	_, err = auth.SignUpCaregiver(ctx, connect.NewRequest(&mtmv1.SignUpCaregiverRequest{Email: m.caregiverEmail, Password: "caregiver password 1", DisplayName: m.caregiverName, InviteCode: inv.Msg.GetInviteCode()}))
	must(err)
	// Read it all back once: the values open.
	rec, err := care.GetPatientRecord(ctx, connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: pid}))
	must(err)
	if rec.Msg.GetPatient().GetFamilyName() != m.family {
		t.Fatalf("the record reads back with family name %q", rec.Msg.GetPatient().GetFamilyName())
	}
	return pid, other.Msg.GetPatient().GetId()
}

// filesFound returns, per file under dir, the markers its bytes hold.
func filesFound(t *testing.T, m markers, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if f := m.found(b); len(f) > 0 {
			out[path] = f
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// redisFound returns the markers in every key and DUMPed value on the
// primaries c reaches, with RDB compression off so that DUMP is verbatim.
func redisFound(t *testing.T, m markers, c redis.UniversalClient) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	scan := func(ctx context.Context, node *redis.Client) error {
		if err := node.ConfigSet(ctx, "rdbcompression", "no").Err(); err != nil {
			return err
		}
		iter := node.Scan(ctx, 0, "*", 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			dump, err := node.Dump(ctx, key).Bytes()
			if err != nil && err != redis.Nil {
				return err
			}
			if f := m.found(append([]byte(key+"\n"), dump...)); len(f) > 0 {
				out[key] = f
			}
		}
		return iter.Err()
	}
	var err error
	switch cc := c.(type) {
	case *redis.ClusterClient:
		err = cc.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, cc)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkNone fails for every place where markers were found.
func checkNone(t *testing.T, what string, found map[string][]string) {
	t.Helper()
	for where, f := range found {
		t.Errorf("%s: %s holds %d markers in the clear: %q", what, where, len(f), f)
	}
}

// swapped reads patient to through the API after its record was replaced
// by from's ciphertext: internal, with ids only in the logs.
func checkSwapped(t *testing.T, r *mtmdRun, m markers, to string) {
	t.Helper()
	_, err := r.pharmacist(t).GetPatientRecord(context.Background(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: to}))
	if connect.CodeOf(err) != connect.CodeInternal {
		t.Errorf("reading a record holding another patient's ciphertext: %v, want internal", err)
	}
	if err != nil && len(m.found([]byte(err.Error()))) > 0 {
		t.Errorf("the error %v tells the client a patient's data", err)
	}
	// The call's log line is written as the call ends, maybe after the
	// answer reached the client.
	waitFor(t, 5*time.Second, "the refused read's log line", func() bool {
		return strings.Contains(r.stdout.String(), `"procedure":"/mtm.v1.CareService/GetPatientRecord","protocol":"connect","stream_type":"unary","code":"internal"`)
	})
	logs := r.stdout.String() + r.stderr.String()
	if f := m.found([]byte(logs)); len(f) > 0 {
		t.Errorf("mtmd's logs hold markers %q", f)
	}
}

func TestPHIAtRestBolt(t *testing.T) {
	m := newMarkers(t)
	dir := t.TempDir()
	r := startMTMD(t, "--data-dir", dir)
	from, to := populate(t, r, m)
	r.stop(t)
	checkNone(t, "bolt data dir (the store file, the audit archive, the keys)", filesFound(t, m, dir))
	if f := m.found([]byte(r.stdout.String() + r.stderr.String())); len(f) > 0 {
		t.Errorf("mtmd's logs hold markers %q", f)
	}

	// A raw write: from's sealed record on to's key.
	db, err := bbolt.Open(bootstrap.BoltPath(dir), 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("patients"))
		return b.Put([]byte(to), bytes.Clone(b.Get([]byte(from))))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	r = startMTMD(t, "--data-dir", dir)
	checkSwapped(t, r, m, to)
	r.stop(t)
}

// TestPHIAtRestBoltUnsealedControl shows the scan would see a clear value:
// the same run with --no-seal finds the markers in the file.
func TestPHIAtRestBoltUnsealedControl(t *testing.T) {
	m := newMarkers(t)
	dir := t.TempDir()
	r := startMTMD(t, "--data-dir", dir, "--no-seal", "--bench-endpoints")
	populate(t, r, m)
	r.stop(t)
	found := filesFound(t, m, filepath.Dir(bootstrap.BoltPath(dir)))
	if len(found[bootstrap.BoltPath(dir)]) < len(m.all())/2 {
		t.Errorf("unsealed, the bolt file shows only %q of %d markers: the scan is blind", found[bootstrap.BoltPath(dir)], len(m.all()))
	}
}

func TestPHIAtRestRedisAOF(t *testing.T) {
	m := newMarkers(t)
	addr, srv := redistest.StartServer(t, redistest.AppendOnly(true), redistest.AppendFsync("always"))
	dir := t.TempDir()
	r := startMTMD(t, "--data-dir", dir, "--redis-url", "redis://"+addr)
	from, to := populate(t, r, m)
	r.stop(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	checkNone(t, "Redis", redisFound(t, m, c))
	checkNone(t, "Redis dir (AOF)", filesFound(t, m, srv.Dir()))
	checkNone(t, "data dir (audit archive, keys)", filesFound(t, m, dir))
	if f := m.found([]byte(r.stdout.String() + r.stderr.String())); len(f) > 0 {
		t.Errorf("mtmd's logs hold markers %q", f)
	}

	ctx := context.Background()
	dump, err := c.Dump(ctx, "mtm:{p:"+from+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RestoreReplace(ctx, "mtm:{p:"+to+"}", 0, dump).Err(); err != nil {
		t.Fatal(err)
	}
	r = startMTMD(t, "--data-dir", dir, "--redis-url", "redis://"+addr)
	checkSwapped(t, r, m, to)
	r.stop(t)
}

func TestPHIAtRestRedisCluster(t *testing.T) {
	m := newMarkers(t)
	cluster := redistest.StartCluster(t, redistest.AppendOnly(true))
	dir := t.TempDir()
	url := "redis://" + strings.Join(cluster.Addrs(), ",")
	r := startMTMD(t, "--data-dir", dir, "--redis-url", url)
	from, to := populate(t, r, m)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs()})
	defer c.Close()
	checkNone(t, "Redis Cluster", redisFound(t, m, c))
	for _, n := range cluster.Nodes {
		checkNone(t, "Redis node dir (AOF)", filesFound(t, m, n.Dir()))
	}

	// The raw write while mtmd serves: another slot, another node.
	ctx := context.Background()
	dump, err := c.Dump(ctx, "mtm:{p:"+from+"}").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RestoreReplace(ctx, "mtm:{p:"+to+"}", 0, dump).Err(); err != nil {
		t.Fatal(err)
	}
	checkSwapped(t, r, m, to)
	r.stop(t)
}

// TestReencryptInTheBackground: mtmd --reencrypt runs the pass beside the
// servers on bbolt (one process holds the file), logs its completion and
// saves it, so that the next start with the flag still set does not run
// it again.
func TestReencryptInTheBackground(t *testing.T) {
	dir := t.TempDir()
	r := startMTMD(t, "--data-dir", dir, "--reencrypt=rotate")
	waitFor(t, 30*time.Second, "the pass completes", func() bool {
		return strings.Contains(r.stdout.String(), `"msg":"re-encryption pass complete"`) || strings.Contains(r.stdout.String(), "re-encryption pass stopped")
	})
	if !strings.Contains(r.stdout.String(), `"msg":"re-encryption pass complete"`) {
		t.Fatalf("the pass did not complete:\n%s", r.stdout)
	}
	// The demo data reads after the rotation.
	if _, err := r.pharmacist(t).GetPatientRecord(context.Background(), connect.NewRequest(&mtmv1.GetPatientRecordRequest{PatientId: demo.PatientID})); err != nil {
		t.Errorf("the demo patient after the pass: %v", err)
	}
	r.stop(t)
	if b, _ := os.ReadFile(reencryptState(dir)); strings.TrimSpace(string(b)) != "done" {
		t.Errorf("state file %q, want done", b)
	}
	r = startMTMD(t, "--data-dir", dir, "--reencrypt")
	waitFor(t, 10*time.Second, "the pass is skipped", func() bool {
		return strings.Contains(r.stdout.String(), "re-encryption pass already complete")
	})
	r.stop(t)
}

// TestRedisRefusesAnotherKEK: a second instance on the same Redis with
// its own key-encryption key does not start, and says what to do.
func TestRedisRefusesAnotherKEK(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	url := "redis://" + addr
	dirA, dirB := t.TempDir(), t.TempDir()
	r := startMTMD(t, "--data-dir", dirA, "--redis-url", url)
	r.stop(t)
	// B has A's signing-key wrapping key, not A's key-encryption key.
	wrap, err := os.ReadFile(bootstrap.WrapKeyPath(dirA))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bootstrap.WrapKeyPath(dirB), wrap, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, stdout, stderr := mtmdProcess(t, "--addr", "127.0.0.1:0", "--admin-addr", "off", "--data-dir", dirB, "--redis-url", url)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("mtmd with another key-encryption key exited cleanly")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("mtmd with another key-encryption key started")
	}
	if msg := stderr.String(); !strings.Contains(msg, "copy the key file of the first instance") || !strings.Contains(msg, "--kek-uri") {
		t.Errorf("the refusal does not say what to do:\n%s\n%s", msg, stdout)
	}
}

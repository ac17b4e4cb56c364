package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/validate"

	"github.com/mtmapp/mtm/backend/api"
	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store/bolt"
	mtmv1 "github.com/mtmapp/mtm/proto/gen/mtm/v1"
	"github.com/mtmapp/mtm/proto/gen/mtm/v1/mtmv1connect"
)

// cli runs mtmctl commands in-process against a fake environment.
type cli struct {
	t      *testing.T
	env    map[string]string
	stdin  string
	now    func() time.Time
	config string // user config dir
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	return &cli{t: t, env: map[string]string{}, now: time.Now, config: t.TempDir()}
}

// run executes one command and returns stdout, stderr and the error.
func (c *cli) run(args ...string) (string, string, error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	sys := system{
		getenv:        func(k string) string { return c.env[k] },
		stdin:         strings.NewReader(c.stdin),
		stdout:        &out,
		stderr:        &errOut,
		userConfigDir: func() (string, error) { return c.config, nil },
		now:           c.now,
		http:          &http.Client{Timeout: 30 * time.Second},
	}
	err := run(context.Background(), args, sys)
	return out.String(), errOut.String(), err
}

// mustRun fails the test when the command fails.
func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("mtmctl %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveDataDir serves the mtm.v1 API on the store in dataDir the way mtmd
// wires it (auth, then validation), over plain HTTP/1.1.
func serveDataDir(t *testing.T, dataDir string) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := bolt.Open(bootstrap.BoltPath(dataDir), bolt.Options{Logger: logger, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := auth.LoadOrCreateKeySet(bootstrap.KeyDir(dataDir), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(keys, auth.TokenConfig{Issuer: "test", Audience: "test", AccessTTL: 15 * time.Minute, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	err = api.Register(mux, api.Config{Store: st, Tokens: tokens, Logger: logger},
		connect.WithInterceptors(auth.NewInterceptor(tokens, api.PublicProcedures()), validate.NewInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

var (
	patientIDLine = regexp.MustCompile(`patient id:\s+(\S+)`)
	codeLine      = regexp.MustCompile(`activation code:\s+(\S+)`)
)

func TestPharmacyLifecycle(t *testing.T) {
	dataDir := t.TempDir()
	c := newCLI(t)
	adminPW := writeFile(t, "correct horse battery staple\n")

	out := c.mustRun("bootstrap", "--data-dir", dataDir, "--pharmacy", "Riverside Pharmacy",
		"--email", "Dana@Example.org", "--name", "Dana Ortiz", "--password-file", adminPW)
	if !strings.Contains(out, "pharmacy Riverside Pharmacy created: ph") || !strings.Contains(out, "dana@example.org") {
		t.Errorf("bootstrap output:\n%s", out)
	}

	server := serveDataDir(t, dataDir)
	tokenFile := filepath.Join(t.TempDir(), "session.json")

	t.Run("bootstrap while the server runs says to stop it", func(t *testing.T) {
		_, _, err := c.run("bootstrap", "--data-dir", dataDir, "--pharmacy", "Second", "--email", "x@example.org",
			"--name", "X", "--password-file", adminPW)
		if err == nil || !strings.Contains(err.Error(), "stop the server") {
			t.Errorf("bootstrap on a locked data dir: %v, want advice to stop the server", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		c.env["MTM_PASSWORD"] = "not the password"
		defer delete(c.env, "MTM_PASSWORD")
		_, _, err := c.run("login", "--server", server, "--email", "dana@example.org", "--token-file", tokenFile)
		if err == nil || !strings.Contains(err.Error(), "wrong e-mail or password") {
			t.Errorf("login with a wrong password: %v", err)
		}
		if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed login left a session file: %v", err)
		}
	})

	c.env["MTM_PASSWORD"] = "correct horse battery staple"
	out = c.mustRun("login", "--server", server, "--email", "dana@example.org", "--token-file", tokenFile)
	delete(c.env, "MTM_PASSWORD")
	if !strings.Contains(out, "pharmacy admin") {
		t.Errorf("login output:\n%s", out)
	}
	info, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("session file mode = %v, want 0600", info.Mode().Perm())
	}
	// From here on the session file is found through MTM_TOKEN_FILE and the
	// server through the session.
	c.env["MTM_TOKEN_FILE"] = tokenFile

	out = c.mustRun("enroll", "--given", "Ruth", "--family", "Alvarez", "--dob", "1948-03-12", "--tz", "America/Chicago")
	m := patientIDLine.FindStringSubmatch(out)
	if m == nil || codeLine.FindStringSubmatch(out) == nil {
		t.Fatalf("enroll output lacks a patient id or activation code:\n%s", out)
	}
	patientID := m[1]

	out = c.mustRun("patients", "--name", "alv")
	if !strings.Contains(out, patientID) || !strings.Contains(out, "Alvarez, Ruth") || !strings.Contains(out, "1948-03-12") {
		t.Errorf("patients output:\n%s", out)
	}
	if out := c.mustRun("patients", "--name", "zzz"); !strings.Contains(out, "no patients found") {
		t.Errorf("patients with no match:\n%s", out)
	}

	addRecord(t, server, tokenFile, patientID)
	out = c.mustRun("record", patientID)
	for _, want := range []string{
		"Alvarez, Ruth (" + patientID + ")",
		"PERSONAL MEDICATION LIST",
		"1. Lisinopril 10 mg (RxCUI 314076)",
		"How I use it:",
		"1 tablet by mouth every morning",
		"Last fill:",
		"2026-02-01, 30 days' supply",
		"MEDICATION ACTION PLAN",
		"What we talked about: Blood pressure",
		"(nothing recorded yet)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("record lacks %q:\n%s", want, out)
		}
	}

	out = c.mustRun("activation-code", patientID)
	if codeLine.FindStringSubmatch(out) == nil {
		t.Errorf("activation-code output:\n%s", out)
	}

	t.Run("a new pharmacist signs in with the password given on stdin", func(t *testing.T) {
		c.stdin = "pharmacist password 1\n"
		out := c.mustRun("create-pharmacist", "--email", "lee@example.org", "--name", "Lee Park")
		c.stdin = ""
		if !strings.Contains(out, "created for lee@example.org") {
			t.Errorf("create-pharmacist output:\n%s", out)
		}
		other := filepath.Join(t.TempDir(), "lee.json")
		c.mustRun("login", "--server", server, "--email", "lee@example.org", "--token-file", other,
			"--password-file", writeFile(t, "pharmacist password 1\n"))
		var s session
		b, _ := os.ReadFile(other)
		if err := json.Unmarshal(b, &s); err != nil || s.Role != "pharmacist" {
			t.Errorf("Lee's session = %+v (%v), want role pharmacist", s, err)
		}
	})

	t.Run("an expired access token is renewed from the refresh token", func(t *testing.T) {
		before := readSession(t, tokenFile)
		c.now = func() time.Time { return time.Now().Add(time.Hour) }
		defer func() { c.now = time.Now }()
		c.mustRun("patients")
		after := readSession(t, tokenFile)
		if after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken {
			t.Error("the session was not renewed")
		}
	})

	t.Run("a session file others can read is refused", func(t *testing.T) {
		if err := os.Chmod(tokenFile, 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(tokenFile, 0o600)
		_, _, err := c.run("patients")
		if err == nil || !strings.Contains(err.Error(), "readable by others") {
			t.Errorf("patients with a 0644 session: %v", err)
		}
	})

	t.Run("an admin finds a patient by name and birth date and erases them", func(t *testing.T) {
		out := c.mustRun("enroll", "--given", "Zed", "--family", "Gone", "--dob", "1950-05-05", "--tz", "UTC")
		m := patientIDLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("enroll output:\n%s", out)
		}
		if out := c.mustRun("patients", "--name", "gone", "--dob", "1950-05-05"); !strings.Contains(out, m[1]) {
			t.Errorf("patients by family name and birth date:\n%s", out)
		}
		if _, _, err := c.run("delete-patient", m[1], "--confirm", "Gon"); err == nil || !strings.Contains(err.Error(), "confirm_family_name") {
			t.Errorf("delete-patient with a wrong name: %v", err)
		}
		if out := c.mustRun("delete-patient", m[1], "--confirm", "Gone"); !strings.Contains(out, "patient "+m[1]+" erased") {
			t.Errorf("delete-patient output:\n%s", out)
		}
		if _, _, err := c.run("call", "CareService/GetPatientRecord", `{"patientId":"`+m[1]+`"}`); err == nil || !strings.Contains(err.Error(), "not_found") {
			t.Errorf("the erased patient's record: %v", err)
		}
	})

	c.mustRun("logout")
	if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("logout left the session file: %v", err)
	}
	if _, _, err := c.run("patients"); err == nil || !strings.Contains(err.Error(), "not signed in") {
		t.Errorf("patients after logout: %v", err)
	}
}

func readSession(t *testing.T, path string) session {
	t.Helper()
	s, err := loadSession(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// addRecord gives the patient a medicine, a fill and an action item through
// the API, as a pharmacist would from an app.
func addRecord(t *testing.T, server, tokenFile, patientID string) {
	t.Helper()
	s := readSession(t, tokenFile)
	care := mtmv1connect.NewCareServiceClient(http.DefaultClient, server)
	ctx := context.Background()
	authed := func(r connect.AnyRequest) { r.Header().Set("Authorization", "Bearer "+s.AccessToken) }

	addMed := connect.NewRequest(&mtmv1.AddMedicationRequest{PatientId: patientID, Medication: &mtmv1.MedicationFields{
		Name: "Lisinopril", Strength: "10 mg", Rxcui: "314076", HowIUseIt: "1 tablet by mouth every morning",
		WhyIUseIt: "blood pressure", Prescriber: "Dr. Okafor", StartedOn: "2025-06-01",
	}})
	authed(addMed)
	med, err := care.AddMedication(ctx, addMed)
	if err != nil {
		t.Fatal(err)
	}
	fill := connect.NewRequest(&mtmv1.RecordFillRequest{PatientId: patientID, MedicationId: med.Msg.GetMedication().GetId(),
		FilledOn: "2026-02-01", DaysSupply: 30})
	authed(fill)
	if _, err := care.RecordFill(ctx, fill); err != nil {
		t.Fatal(err)
	}
	item := connect.NewRequest(&mtmv1.AddActionItemRequest{PatientId: patientID,
		WhatWeTalkedAbout: "Blood pressure", WhatINeedToDo: "Check it every morning and write it down"})
	authed(item)
	if _, err := care.AddActionItem(ctx, item); err != nil {
		t.Fatal(err)
	}
}

func TestArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{"bootstrap lists every missing flag", []string{"bootstrap", "--data-dir", "x"},
			[]string{"--email", "--name", "--pharmacy"}},
		{"bootstrap needs a store", []string{"bootstrap", "--pharmacy", "P", "--email", "a@example.org", "--name", "N"},
			[]string{"--data-dir"}},
		{"bootstrap with unreachable redis", []string{"bootstrap", "--redis-url", "redis://127.0.0.1:1", "--kek-file", "KEKFILE",
			"--pharmacy", "P", "--email", "a@example.org", "--name", "N", "--password-file", "PWFILE"},
			[]string{"unavailable"}},
		{"bootstrap on redis without the key-encryption key", []string{"bootstrap", "--redis-url", "redis://127.0.0.1:1",
			"--pharmacy", "P", "--email", "a@example.org", "--name", "N", "--password-file", "PWFILE"},
			[]string{"--kek-file", "--kek-uri"}},
		{"empty password file", []string{"bootstrap", "--data-dir", "x", "--pharmacy", "P", "--email", "a@example.org",
			"--name", "N", "--password-file", "/dev/null"}, []string{"is empty"}},
		{"login lists every missing flag", []string{"login"}, []string{"--email", "--server"}},
		{"login needs an http URL", []string{"login", "--server", "ftp://x", "--email", "a@example.org"}, []string{"want a URL"}},
		{"enroll lists every missing flag", []string{"enroll", "--given", "G"}, []string{"--dob", "--family", "--tz"}},
		{"enroll checks the date", []string{"enroll", "--given", "G", "--family", "F", "--dob", "1948-02-30", "--tz", "UTC"},
			[]string{"not a date"}},
		{"enroll checks the zone", []string{"enroll", "--given", "G", "--family", "F", "--dob", "1948-02-03", "--tz", "Mars/Olympus"},
			[]string{"not an IANA time zone"}},
		{"record needs one id", []string{"record"}, []string{"exactly one patient id"}},
		{"record takes flags after the id", []string{"record", "pt_1", "--token-file", "/nonexistent/s.json"},
			[]string{"not signed in"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			for i, a := range tc.args {
				if a == "PWFILE" {
					tc.args[i] = writeFile(t, "a long enough password\n")
				}
				if a == "KEKFILE" {
					tc.args[i] = filepath.Join(t.TempDir(), "phi-kek.json")
				}
			}
			_, _, err := c.run(tc.args...)
			if err == nil {
				t.Fatal("command succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		out, _, err := newCLI(t).run("help")
		if err != nil || !strings.Contains(out, "create-pharmacist") || !strings.Contains(out, "bootstrap") {
			t.Errorf("help = %v:\n%s", err, out)
		}
	})
}

func TestBootstrapRefusesBadInputAndDuplicates(t *testing.T) {
	dataDir := t.TempDir()
	c := newCLI(t)
	_, _, err := c.run("bootstrap", "--data-dir", dataDir, "--pharmacy", "P", "--email", "not-an-email",
		"--name", "N", "--password-file", writeFile(t, "short\n"))
	if err == nil || !strings.Contains(err.Error(), "not an address") || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("bootstrap with bad input: %v, want both problems", err)
	}
	c.stdin = "a long enough password\n"
	c.mustRun("bootstrap", "--data-dir", dataDir, "--pharmacy", "P", "--email", "a@example.org", "--name", "N")
	c.stdin = "a long enough password\n"
	_, _, err = c.run("bootstrap", "--data-dir", dataDir, "--pharmacy", "P2", "--email", "A@example.org", "--name", "N")
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second bootstrap with the same e-mail: %v", err)
	}
}

package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
	"github.com/mtmapp/mtm/backend/store/redis/redistest"
)

var (
	passComplete = regexp.MustCompile(`pass complete: (\d+) patients, (\d+) values resealed`)
	stepCursor   = regexp.MustCompile(`step 1: .*; cursor (\S+)`)
)

// complete returns the patients and resealed counts of a finished pass.
func complete(t *testing.T, out string) (patients, resealed int) {
	t.Helper()
	m := passComplete.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no completed pass in:\n%s", out)
	}
	patients, _ = strconv.Atoi(m[1])
	resealed, _ = strconv.Atoi(m[2])
	return patients, resealed
}

// TestReencryptMigratesARedisStore: patients written before sealing (an
// older release: values unsealed) are sealed by `mtmctl reencrypt`, step
// by step with the cursor printed and saved; a re-run resumes from a
// cursor; a second pass finds nothing left to seal; --rotate reseals
// everything under new data keys; the records read the same after.
func TestReencryptMigratesARedisStore(t *testing.T) {
	addr, _ := redistest.StartServer(t)
	url := "redis://" + addr
	kek := filepath.Join(t.TempDir(), "phi-kek.json")
	legacy, _, err := backends.Open(t.Context(), backends.Settings{RedisURL: url, KEKFile: kek, NoSeal: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pt_a", "pt_b", "pt_c"} {
		if err := legacy.CreatePatient(t.Context(), store.Patient{ID: id, PharmacyID: "ph_x", GivenName: "Given " + id, FamilyName: "Family",
			TimeZone: "UTC", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	legacy.Close()

	c := newCLI(t)
	if _, _, err := c.run("reencrypt", "--redis-url", url); err == nil || !strings.Contains(err.Error(), "key-encryption key") {
		t.Errorf("reencrypt on Redis without the servers' key: %v, want a refusal naming the key-encryption key", err)
	}
	state := filepath.Join(t.TempDir(), "cursor")
	out := c.mustRun("reencrypt", "--redis-url", url, "--kek-file", kek, "--batch", "2", "--state-file", state)
	m := stepCursor.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no cursor after the first step:\n%s", out)
	}
	if patients, resealed := complete(t, out); patients != 3 || resealed < 3 {
		t.Errorf("the migration went through %d patients resealing %d values; want 3 patients, at least their 3 records\n%s", patients, resealed, out)
	}
	if !strings.Contains(out, "append-only file") {
		t.Errorf("a completed pass on Redis does not rewrite (or say to rewrite) the AOF:\n%s", out)
	}
	if b, _ := os.ReadFile(state); strings.TrimSpace(string(b)) != "done" {
		t.Errorf("state file after the pass: %q, want done", b)
	}

	// Resuming from the first step's cursor goes through what was left.
	out = c.mustRun("reencrypt", "--redis-url", url, "--kek-file", kek, "--batch", "2", "--state-file", state, "--resume", m[1])
	if patients, resealed := complete(t, out); patients != 1 || resealed != 0 || !strings.Contains(out, "resuming at cursor "+m[1]) {
		t.Errorf("resumed pass: %d patients, %d resealed; want the 1 patient after the cursor, nothing left to seal\n%s", patients, resealed, out)
	}
	out = c.mustRun("reencrypt", "--redis-url", url, "--kek-file", kek, "--state-file", state)
	if _, resealed := complete(t, out); resealed != 0 {
		t.Errorf("a second pass resealed %d values, want 0\n%s", resealed, out)
	}
	out = c.mustRun("reencrypt", "--redis-url", url, "--kek-file", kek, "--state-file", state, "--rotate")
	if _, resealed := complete(t, out); resealed < 3 {
		t.Errorf("a rotation resealed %d values, want at least the 3 records\n%s", resealed, out)
	}

	st, _, err := backends.Open(t.Context(), backends.Settings{RedisURL: url, KEKFile: kek, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"pt_a", "pt_b", "pt_c"} {
		if p, err := st.GetPatient(t.Context(), id); err != nil || p.GivenName != "Given "+id {
			t.Errorf("%s after the passes: %+v, %v", id, p, err)
		}
	}
}

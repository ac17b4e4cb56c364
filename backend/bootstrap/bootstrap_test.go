package bootstrap_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/bolt"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mtm.db"), bolt.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var now = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestCreatePharmacy(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	phID, acID, err := bootstrap.CreatePharmacy(ctx, st, now, " Riverside Pharmacy ", "Dana@Example.org", "correct horse battery", "Dana Ortiz")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phID, "ph") || !strings.HasPrefix(acID, "ac") {
		t.Errorf("ids %q, %q lack their ph/ac prefixes", phID, acID)
	}
	ph, err := st.GetPharmacy(ctx, phID)
	if err != nil {
		t.Fatal(err)
	}
	if ph.Name != "Riverside Pharmacy" {
		t.Errorf("pharmacy name = %q", ph.Name)
	}
	ac, err := st.GetAccountByEmail(ctx, "dana@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if ac.ID != acID || ac.Role != store.RolePharmacyAdmin || ac.PharmacyID != phID || ac.DisplayName != "Dana Ortiz" {
		t.Errorf("account = %+v, want pharmacy admin %s of %s", ac, acID, phID)
	}
	if strings.Contains(ac.PasswordHash, "correct horse") || !strings.HasPrefix(ac.PasswordHash, "$argon2id$") {
		t.Errorf("password stored as %q, want an argon2id hash", ac.PasswordHash)
	}
	if ok, err := auth.CheckPassword(ac.PasswordHash, "correct horse battery"); err != nil || !ok {
		t.Errorf("the admin cannot sign in with the chosen password: ok=%v err=%v", ok, err)
	}

	t.Run("same e-mail again writes nothing", func(t *testing.T) {
		_, _, err := bootstrap.CreatePharmacy(ctx, st, now, "Second", "DANA@example.org", "another long password", "Dana")
		if !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("err = %v, want ErrAlreadyExists", err)
		}
	})
}

func TestCreatePharmacyRejectsBadInput(t *testing.T) {
	tests := []struct {
		name                            string
		pharmacy, email, password, user string
		want                            []string
	}{
		{"everything wrong at once", " ", "not-an-email", "short", "",
			[]string{"pharmacy name is empty", "not an address", "at least 12", "admin name is empty"}},
		{"display name in e-mail", "P", "Dana <dana@example.org>", "long enough password", "D",
			[]string{"not an address"}},
		{"no domain", "P", "dana@", "long enough password", "D", []string{"not an address"}},
		{"11 characters", "P", "d@example.org", "12345678901", "D", []string{"has 11 characters"}},
		{"too long password", "P", "d@example.org", strings.Repeat("x", 257), "D", []string{"longer than 256"}},
		{"too long name", strings.Repeat("p", 201), "d@example.org", "long enough password", strings.Repeat("n", 101),
			[]string{"pharmacy name is longer", "admin name is longer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := openStore(t)
			_, _, err := bootstrap.CreatePharmacy(ctx, st, now, tc.pharmacy, tc.email, tc.password, tc.user)
			if !errors.Is(err, bootstrap.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tc.password) && len(tc.password) > 0 {
				t.Errorf("error %q echoes the password", err)
			}
			if _, err := st.GetAccountByEmail(ctx, tc.email); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("an account was written despite bad input: %v", err)
			}
		})
	}
}

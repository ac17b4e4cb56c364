package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

var pharmacyCases = []testCase{
	{"CreateGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := store.Pharmacy{ID: "ph-1", Name: "Main Street Pharmacy #0412", CreatedAt: sampleBase}
		must(t, "CreatePharmacy", s.CreatePharmacy(ctx, want))
		got, err := s.GetPharmacy(ctx, want.ID)
		must(t, "GetPharmacy", err)
		if got.ID != want.ID || got.Name != want.Name {
			t.Fatalf("GetPharmacy = %+v, want %+v", got, want)
		}
		sameTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	}},
	{"DuplicateKeepsOriginal", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePharmacy", s.CreatePharmacy(ctx, store.Pharmacy{ID: "ph-1", Name: "First"}))
		wantErr(t, "CreatePharmacy again", s.CreatePharmacy(ctx, store.Pharmacy{ID: "ph-1", Name: "Second"}), store.ErrAlreadyExists)
		got, err := s.GetPharmacy(ctx, "ph-1")
		must(t, "GetPharmacy", err)
		if got.Name != "First" {
			t.Fatalf("duplicate create overwrote the pharmacy: name %q", got.Name)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		_, err := s.GetPharmacy(t.Context(), "ph-missing")
		wantErr(t, "GetPharmacy", err, store.ErrNotFound)
		_, err = s.UpdatePharmacy(t.Context(), "ph-missing", func(*store.Pharmacy) error { return nil })
		wantErr(t, "UpdatePharmacy", err, store.ErrNotFound)
	}},
	{"UpdateKeepsEveryField", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePharmacy", s.CreatePharmacy(ctx, store.Pharmacy{ID: "ph-1", Name: "Main Street Pharmacy", CreatedAt: sampleBase}))
		want := store.Pharmacy{ID: "ph-1", Name: "Main Street Pharmacy #0412", CreatedAt: sampleBase, Phone: "+1 312 555 0100", TTY: "711",
			Hours: "Mon-Fri 9 AM-7 PM, Sat 9 AM-1 PM", Address: "100 Main Street\nSpringfield, IL 62701", NPI: "1234567893", PlanName: "Prairie Health Part D",
			RequireSecondFactor: true}
		got, err := s.UpdatePharmacy(ctx, "ph-1", func(p *store.Pharmacy) error {
			created := p.CreatedAt
			*p = want
			p.CreatedAt = created
			return nil
		})
		must(t, "UpdatePharmacy", err)
		read, err := s.GetPharmacy(ctx, "ph-1")
		must(t, "GetPharmacy", err)
		for _, g := range []store.Pharmacy{got, read} {
			sameTime(t, "CreatedAt", g.CreatedAt, want.CreatedAt)
			g.CreatedAt = want.CreatedAt
			if g != want {
				t.Errorf("pharmacy = %+v, want %+v", g, want)
			}
		}
	}},
	{"UpdateErrorWritesNothing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreatePharmacy", s.CreatePharmacy(ctx, store.Pharmacy{ID: "ph-1", Name: "First"}))
		boom := errors.New("refused")
		_, err := s.UpdatePharmacy(ctx, "ph-1", func(p *store.Pharmacy) error { p.Name = "Changed"; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("UpdatePharmacy = %v, want the closure's error", err)
		}
		if got, _ := s.GetPharmacy(ctx, "ph-1"); got.Name != "First" {
			t.Errorf("a refused update wrote %q", got.Name)
		}
	}},
}

// sampleAccount returns a pharmacist account with every field set.
func sampleAccount(id, email string) store.Account {
	return store.Account{
		ID:           id,
		Email:        email,
		DisplayName:  "Dr. Ana Lucía Pérez, PharmD",
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$4Vy2Jq4mQ3rQm2ZyUqGfQk8gU2i6b0kS7l7nYf1p9aE",
		Role:         store.RolePharmacist,
		PharmacyID:   "ph-1",
		NPI:          "1234567893",
		CreatedAt:    sampleBase,
		Devices: []store.Device{{
			ID: "dev-a1", FCMToken: "fcm:eXaMpLeToKeN-dGhpcyBpcyBub3QgYSByZWFsIHRva2Vu", Platform: "ios",
			AppVersion: "2.4.1 (20417)", Locale: "es-US", RegisteredAt: sampleBase.Add(time.Hour),
		}},
		PatientIDs: []string{"pat-1", "pat-7"},
	}
}

var accountCases = []testCase{
	{"CreateGetVersion1", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := sampleAccount("acct-1", "ana.perez@example.org")
		must(t, "CreateAccount", s.CreateAccount(ctx, want))
		got, err := s.GetAccount(ctx, want.ID)
		must(t, "GetAccount", err)
		sameAccount(t, "GetAccount", got, want)
		if got.Version != 1 {
			t.Fatalf("stored Version = %d, want 1", got.Version)
		}
	}},
	{"ByEmailIsNormalized", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := sampleAccount("acct-1", "ana.perez@example.org")
		must(t, "CreateAccount", s.CreateAccount(ctx, want))
		for _, email := range []string{"ana.perez@example.org", "  Ana.Perez@EXAMPLE.org\t"} {
			got, err := s.GetAccountByEmail(ctx, email)
			must(t, "GetAccountByEmail("+email+")", err)
			sameAccount(t, "GetAccountByEmail", got, want)
		}
	}},
	{"DuplicateID", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreateAccount", s.CreateAccount(ctx, sampleAccount("acct-1", "a@example.org")))
		wantErr(t, "CreateAccount same id", s.CreateAccount(ctx, sampleAccount("acct-1", "b@example.org")), store.ErrAlreadyExists)
		_, err := s.GetAccountByEmail(ctx, "b@example.org")
		wantErr(t, "e-mail of the refused account", err, store.ErrNotFound)
		got, err := s.GetAccount(ctx, "acct-1")
		must(t, "GetAccount", err)
		if got.Email != "a@example.org" {
			t.Fatalf("duplicate create overwrote the account: e-mail %q", got.Email)
		}
	}},
	{"DuplicateEmailAfterNormalizing", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, "CreateAccount", s.CreateAccount(ctx, sampleAccount("acct-1", "ana.perez@example.org")))
		wantErr(t, "CreateAccount same e-mail", s.CreateAccount(ctx, sampleAccount("acct-2", " ANA.Perez@example.ORG ")), store.ErrAlreadyExists)
		_, err := s.GetAccount(ctx, "acct-2")
		wantErr(t, "GetAccount of the refused account", err, store.ErrNotFound)
		got, err := s.GetAccountByEmail(ctx, "ana.perez@example.org")
		must(t, "GetAccountByEmail", err)
		if got.ID != "acct-1" {
			t.Fatalf("e-mail now resolves to %q, want acct-1", got.ID)
		}
	}},
	{"NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.GetAccount(ctx, "acct-missing")
		wantErr(t, "GetAccount", err, store.ErrNotFound)
		_, err = s.GetAccountByEmail(ctx, "nobody@example.org")
		wantErr(t, "GetAccountByEmail", err, store.ErrNotFound)
	}},
}

// sameAccount compares every field but Version.
func sameAccount(t *testing.T, op string, got, want store.Account) {
	t.Helper()
	g, w := got, want
	g.Version, w.Version = 0, 0
	g.Email, w.Email = store.NormalizeEmail(g.Email), store.NormalizeEmail(w.Email)
	normValue(reflect.ValueOf(&g).Elem())
	normValue(reflect.ValueOf(&w).Elem())
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s = %+v, want %+v", op, got, want)
	}
}

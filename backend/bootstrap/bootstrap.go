// Package bootstrap creates what a fresh installation needs before anyone
// can sign in: a pharmacy and its first pharmacy-admin account. It works on
// the store directly (mtmctl bootstrap), so it runs with no server and no
// token; every later account is made through the API by that admin.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/store"
)

// Limits on the inputs, the same as the API enforces on CreatePharmacist and
// Login, so that the account made here can sign in.
const (
	MinPasswordChars = 12
	MaxPasswordChars = 256
	MaxEmailBytes    = 254
	MaxNameChars     = 100
	MaxPharmacyChars = 200
)

// ErrInvalidInput is wrapped by CreatePharmacy when an argument is unusable;
// the message lists every problem.
var ErrInvalidInput = errors.New("bootstrap: invalid input")

// emailPattern is the WHATWG "valid e-mail address" rule, which protovalidate's
// email constraint (and so the Login RPC) also applies.
var emailPattern = regexp.MustCompile(`^[a-zA-Z0-9.!#$%&'*+/=?^_` + "`" + `{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

// CreatePharmacy creates a pharmacy named pharmacyName and its first
// account, a pharmacy admin who signs in with adminEmail and adminPassword
// (stored only as an argon2id hash). It returns the new ids.
//
// Errors: ErrInvalidInput listing every bad argument (blank names, an
// e-mail that is not an address, a password shorter than 12 or longer than
// 256 characters), with nothing written; store.ErrAlreadyExists when an
// account with that e-mail exists, with nothing written; or the store's
// error. The two records are written one after the other: if the second
// write fails the pharmacy exists without an admin and the error says so.
func CreatePharmacy(ctx context.Context, st store.Store, now time.Time, pharmacyName, adminEmail, adminPassword, adminName string) (pharmacyID, accountID string, err error) {
	pharmacyName, adminName = strings.TrimSpace(pharmacyName), strings.TrimSpace(adminName)
	email := store.NormalizeEmail(adminEmail)
	if err := validate(pharmacyName, email, adminPassword, adminName); err != nil {
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: %w", err)
	}
	switch _, err := st.GetAccountByEmail(ctx, email); {
	case err == nil:
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: account %s: %w", email, store.ErrAlreadyExists)
	case !errors.Is(err, store.ErrNotFound):
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: %w", err)
	}
	hash, err := auth.HashPassword(adminPassword)
	if err != nil {
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: %w", err)
	}
	if pharmacyID, err = auth.NewID("ph"); err != nil {
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: %w", err)
	}
	if accountID, err = auth.NewID("ac"); err != nil {
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: %w", err)
	}
	now = now.UTC()
	if err := st.CreatePharmacy(ctx, store.Pharmacy{ID: pharmacyID, Name: pharmacyName, CreatedAt: now}); err != nil {
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: %w", err)
	}
	err = st.CreateAccount(ctx, store.Account{
		ID:           accountID,
		Email:        email,
		DisplayName:  adminName,
		PasswordHash: hash,
		Role:         store.RolePharmacyAdmin,
		PharmacyID:   pharmacyID,
		CreatedAt:    now,
	})
	if err != nil {
		return "", "", fmt.Errorf("bootstrap.CreatePharmacy: pharmacy %s created without its admin: %w", pharmacyID, err)
	}
	return pharmacyID, accountID, nil
}

// validate lists every problem with the arguments together.
func validate(pharmacyName, email, password, adminName string) error {
	var problems []string
	switch n := utf8.RuneCountInString(pharmacyName); {
	case n == 0:
		problems = append(problems, "pharmacy name is empty")
	case n > MaxPharmacyChars:
		problems = append(problems, fmt.Sprintf("pharmacy name is longer than %d characters", MaxPharmacyChars))
	}
	switch {
	case email == "":
		problems = append(problems, "e-mail is empty")
	case len(email) > MaxEmailBytes:
		problems = append(problems, fmt.Sprintf("e-mail is longer than %d bytes", MaxEmailBytes))
	case !emailPattern.MatchString(email):
		problems = append(problems, fmt.Sprintf("e-mail %q is not an address like name@example.org", email))
	}
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		problems = append(problems, "password is not valid UTF-8")
	case n < MinPasswordChars:
		problems = append(problems, fmt.Sprintf("password has %d characters, at least %d are required", n, MinPasswordChars))
	case n > MaxPasswordChars:
		problems = append(problems, fmt.Sprintf("password is longer than %d characters", MaxPasswordChars))
	}
	switch n := utf8.RuneCountInString(adminName); {
	case n == 0:
		problems = append(problems, "admin name is empty")
	case n > MaxNameChars:
		problems = append(problems, fmt.Sprintf("admin name is longer than %d characters", MaxNameChars))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidInput, strings.Join(problems, "; "))
}

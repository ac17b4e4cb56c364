package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
)

func runBootstrap(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "bootstrap", "--data-dir DIR|--redis-url URL --pharmacy NAME --email E --name N [--password-file F]")
	sf := bindStoreFlags(fs, sys, "mtmd's data `directory` (MTM_DATA_DIR); the server must be stopped")
	pharmacy := fs.String("pharmacy", "", "pharmacy `name`")
	email := fs.String("email", "", "the first pharmacy admin's e-mail")
	name := fs.String("name", "", "the first pharmacy admin's display `name`")
	pwFile := fs.String("password-file", "", "read the admin's password from this `file` (else MTM_PASSWORD or stdin)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if err := required(map[string]string{"pharmacy": *pharmacy, "email": *email, "name": *name}); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	settings, err := sf.settings("bootstrap")
	if err != nil {
		return err
	}
	pw, err := password(sys, *pwFile, true)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	st, _, err := backends.Open(ctx, settings)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	phID, acID, err := bootstrap.CreatePharmacy(ctx, st, sys.now(), *pharmacy, *email, pw, *name)
	if errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("bootstrap: an account with e-mail %s already exists", store.NormalizeEmail(*email))
	}
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	fmt.Fprintf(sys.stdout, "pharmacy %s created: %s\npharmacy admin %s created: %s\n\nStart mtmd, then: mtmctl login --server URL --email %s\n",
		*pharmacy, phID, store.NormalizeEmail(*email), acID, store.NormalizeEmail(*email))
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
	"github.com/mtmapp/mtm/backend/store/backends"
)

// runKeys lists, rotates or retires the access-token signing keys that
// every mtmd of a deployment shares: in the store (Redis; sealed with the
// wrapping key file every instance has) or in a shared key directory.
// Running servers pick the change up within --key-reload (a minute by
// default), or at once when they meet a token of a key they do not know: a
// rotated key signs from then on and the older keys keep verifying until
// retired.
func runKeys(ctx context.Context, sys system, args []string) error {
	fs := newFlags(sys, "keys", "list|rotate|retire [--kid KID] [--redis-url URL --signing-key-wrap-file F | --signing-key-dir DIR | --data-dir DIR]")
	// A kid is base64url and may start with '-', so it comes as a flag.
	kid := fs.String("kid", "", "with retire: the `kid` of the key to retire")
	source := fs.String("signing-keys", sys.getenv("MTM_SIGNING_KEYS"), "where the keys live: store or dir (MTM_SIGNING_KEYS); default store with --redis-url and no --signing-key-dir, else dir")
	wrapFile := fs.String("signing-key-wrap-file", sys.getenv("MTM_SIGNING_KEY_WRAP_FILE"), "`file` of the key sealing the keys in the store, the same as the servers' (default <data-dir>/signing-key-wrap.key)")
	keyDir := fs.String("signing-key-dir", sys.getenv("MTM_SIGNING_KEY_DIR"), "the signing keys' `directory` (MTM_SIGNING_KEY_DIR)")
	sf := bindStoreFlags(fs, sys, "mtmd's data `directory`: keys in its keys/ folder, or in its embedded store (server stopped) with --signing-keys store")
	dataDir, redisURL := sf.dataDir, sf.redisURL
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return errors.New("keys: say list, rotate or retire --kid KID")
	}
	if *source == "" {
		*source = bootstrap.DefaultKeySource(*redisURL, *keyDir)
	}
	settings := bootstrap.KeySettings{Source: *source, Dir: *keyDir, WrapFile: *wrapFile}
	var ks *auth.KeySet
	switch *source {
	case bootstrap.KeysInDir:
		if settings.Dir == "" && *dataDir != "" {
			settings.Dir = bootstrap.KeyDir(*dataDir)
		}
		if settings.Dir == "" {
			return errors.New("keys: missing --signing-key-dir (or --data-dir; or --redis-url for keys kept in the store)")
		}
		if ks, err = bootstrap.OpenKeySet(ctx, settings, nil, sys.now, nil); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	case bootstrap.KeysInStore:
		if *redisURL == "" && *dataDir == "" {
			return errors.New("keys: --signing-keys store needs --redis-url (or --data-dir for the embedded store)")
		}
		if settings.WrapFile == "" && *dataDir != "" {
			settings.WrapFile = bootstrap.WrapKeyPath(*dataDir)
		}
		if settings.WrapFile == "" {
			return errors.New("keys: missing --signing-key-wrap-file (the servers' copy of the wrapping key)")
		}
		storeSettings, err := sf.settings("keys")
		if err != nil {
			return err
		}
		st, _, err := backends.Open(ctx, storeSettings)
		if err != nil {
			return fmt.Errorf("keys: %w", err)
		}
		defer st.Close()
		if ks, err = bootstrap.OpenKeySet(ctx, settings, st, sys.now, slog.New(slog.NewTextHandler(sys.stderr, nil))); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	default:
		return fmt.Errorf("keys: --signing-keys %q: want store or dir", *source)
	}
	switch {
	case rest[0] == "list" && len(rest) == 1:
	case rest[0] == "rotate" && len(rest) == 1:
		if err := ks.Rotate(ctx); err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
	case rest[0] == "retire" && len(rest) == 1 && *kid != "":
		if err := ks.Retire(ctx, *kid); err != nil {
			return fmt.Errorf("keys retire: %w", err)
		}
	default:
		return fmt.Errorf("keys: unknown arguments %q: say list, rotate or retire --kid KID", rest)
	}
	for i, kid := range ks.KeyIDs() {
		role := "verifies"
		if i == 0 {
			role = "signs"
		}
		fmt.Fprintf(sys.stdout, "%s\t%s\n", kid, role)
	}
	return nil
}

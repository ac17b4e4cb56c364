package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mtmapp/mtm/backend/auth"
	"github.com/mtmapp/mtm/backend/bootstrap"
)

// runKeys lists, rotates or retires the access-token signing keys in the
// key directory that every mtmd of a deployment shares. Running servers
// pick the change up within --key-reload (a minute by default): a rotated
// key signs from then on and the older keys keep verifying until retired.
func runKeys(_ context.Context, sys system, args []string) error {
	fs := newFlags(sys, "keys", "list|rotate|retire [--kid KID] [--signing-key-dir DIR | --data-dir DIR]")
	// A kid is base64url and may start with '-', so it comes as a flag.
	kid := fs.String("kid", "", "with retire: the `kid` of the key to retire")
	keyDir := fs.String("signing-key-dir", sys.getenv("MTM_SIGNING_KEY_DIR"), "the signing keys' `directory` (MTM_SIGNING_KEY_DIR)")
	dataDir := fs.String("data-dir", sys.getenv("MTM_DATA_DIR"), "mtmd's data `directory`; keys in its keys/ folder")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	dir := *keyDir
	if dir == "" && *dataDir != "" {
		dir = bootstrap.KeyDir(*dataDir)
	}
	if dir == "" {
		return errors.New("keys: missing --signing-key-dir (or --data-dir)")
	}
	if len(rest) == 0 {
		return errors.New("keys: say list, rotate or retire --kid KID")
	}
	ks, err := auth.LoadOrCreateKeySet(dir, sys.now)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	switch {
	case rest[0] == "list" && len(rest) == 1:
	case rest[0] == "rotate" && len(rest) == 1:
		if err := ks.Rotate(); err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
	case rest[0] == "retire" && len(rest) == 1 && *kid != "":
		if err := ks.Retire(*kid); err != nil {
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

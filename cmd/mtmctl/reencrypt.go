package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
)

// reencryptDone is what the state file holds once a pass completed (the
// same file and word as mtmd --reencrypt's).
const reencryptDone = "done"

// runReencrypt runs the re-encryption pass (store.AtRest.Reencrypt) step
// by step: it seals the values written before sealing existed or under an
// older key version, rewraps every data key under the key-encryption
// key's current version, and with --rotate gives every patient a new data
// key first. Servers on the same Redis keep serving meanwhile. After each
// step it prints the cursor and saves it in the state file, so that a
// re-run resumes where an interrupted one stopped.
func runReencrypt(ctx context.Context, sys system, args []string) error {
	flags := newFlags(sys, "reencrypt", "--redis-url URL --kek-file F|--kek-uri URI | --data-dir DIR  [--rotate] [--batch N] [--resume CURSOR] [--state-file F]")
	sf := bindStoreFlags(flags, sys, "mtmd's data `directory` (MTM_DATA_DIR): its embedded store (the server must be stopped; or run mtmd --reencrypt) or its key file")
	rotate := flags.Bool("rotate", false, "give every patient a new data key version first (a data-key rotation); without it the pass seals what is not sealed under the current keys")
	batch := flags.Int("batch", 100, "patients per step (1–1000)")
	resume := flags.String("resume", "", "continue from this `cursor` (printed by an earlier run) instead of the state file's")
	stateFile := flags.String("state-file", "", "`file` keeping the cursor between runs (default <data-dir>/reencrypt.cursor, else ./mtm-reencrypt.cursor)")
	if _, err := parseArgs(flags, args); err != nil {
		return err
	}
	if *batch < 1 || *batch > 1000 {
		return fmt.Errorf("reencrypt: --batch %d: must be between 1 and 1000", *batch)
	}
	settings, err := sf.settings("reencrypt")
	if err != nil {
		return err
	}
	if *stateFile == "" {
		*stateFile = "mtm-reencrypt.cursor"
		if settings.DataDir != "" {
			*stateFile = filepath.Join(settings.DataDir, "reencrypt.cursor")
		}
	}
	cursor := *resume
	if cursor == "" {
		switch b, err := os.ReadFile(*stateFile); {
		case err == nil:
			if saved := strings.TrimSpace(string(b)); saved != reencryptDone {
				cursor = saved
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("reencrypt: state file: %w", err)
		}
	}
	st, _, err := backends.Open(ctx, settings)
	if err != nil {
		return fmt.Errorf("reencrypt: %w", err)
	}
	defer st.Close()
	if cursor != "" {
		fmt.Fprintf(sys.stdout, "resuming at cursor %s\n", cursor)
	}
	opts := store.ReencryptOptions{Limit: *batch, RotateDataKeys: *rotate}
	var total store.ReencryptPage
	for step := 1; ; step++ {
		page, err := st.Reencrypt(ctx, cursor, opts)
		if err != nil {
			return fmt.Errorf("reencrypt: step %d at cursor %q (re-run to resume): %w", step, cursor, err)
		}
		total.Patients += page.Patients
		total.Resealed += page.Resealed
		total.Retired += page.Retired
		saved := page.Next
		if saved == "" {
			saved = reencryptDone
		}
		if err := os.WriteFile(*stateFile, []byte(saved+"\n"), 0o600); err != nil {
			return fmt.Errorf("reencrypt: saving the cursor %q: %w", page.Next, err)
		}
		if page.Next == "" {
			fmt.Fprintf(sys.stdout, "step %d: %d patients, %d values resealed, %d key versions retired\npass complete: %d patients, %d values resealed, %d key versions retired\n",
				step, page.Patients, page.Resealed, page.Retired, total.Patients, total.Resealed, total.Retired)
			rewriteAOF(ctx, sys, st)
			return nil
		}
		fmt.Fprintf(sys.stdout, "step %d: %d patients, %d values resealed, %d key versions retired; cursor %s\n",
			step, page.Patients, page.Resealed, page.Retired, page.Next)
		cursor = page.Next
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reencrypt: interrupted; resume with --resume %s (or re-run: %s has it)", cursor, *stateFile)
		}
	}
}

// aofRewriter is a store whose append-only files can be rewritten
// (Redis: BGREWRITEAOF on every primary).
type aofRewriter interface {
	RewriteAOF(ctx context.Context) error
}

// rewriteAOF asks Redis to rewrite its append-only file after a completed
// pass: until then the AOF still holds the values as they were written
// before the pass (unsealed, or under retired keys).
func rewriteAOF(ctx context.Context, sys system, st any) {
	rw, ok := st.(aofRewriter)
	if !ok {
		return
	}
	if err := rw.RewriteAOF(ctx); err != nil {
		fmt.Fprintf(sys.stdout, "rewriting the append-only file failed (%v): run BGREWRITEAOF on every primary yourself\n", err)
		return
	}
	fmt.Fprintln(sys.stdout, "asked Redis to rewrite its append-only file (BGREWRITEAOF): the old one held values written before the pass. Replace older RDB snapshots and backups too.")
}

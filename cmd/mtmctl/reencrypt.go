package main

import (
	"context"
	"fmt"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
)

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
			*stateFile = backends.ReencryptStateFile(settings.DataDir)
		}
	}
	pass := backends.Pass{
		StateFile: *stateFile,
		Resume:    *resume,
		Options:   store.ReencryptOptions{Limit: *batch, RotateDataKeys: *rotate},
		Step: func(step int, page, total store.ReencryptPage) error {
			if page.Next == "" {
				fmt.Fprintf(sys.stdout, "step %d: %d patients, %d values resealed, %d key versions retired\npass complete: %d patients, %d values resealed, %d key versions retired\n",
					step, page.Patients, page.Resealed, page.Retired, total.Patients, total.Resealed, total.Retired)
				return nil
			}
			fmt.Fprintf(sys.stdout, "step %d: %d patients, %d values resealed, %d key versions retired; cursor %s\n",
				step, page.Patients, page.Resealed, page.Retired, page.Next)
			if ctx.Err() != nil {
				return fmt.Errorf("reencrypt: interrupted; resume with --resume %s (or re-run: %s has it)", page.Next, *stateFile)
			}
			return nil
		},
	}
	cursor, complete, err := pass.Cursor()
	if err != nil {
		return err
	}
	if complete {
		cursor = "" // a completed pass: run a new one
	}
	st, _, err := backends.Open(ctx, settings)
	if err != nil {
		return fmt.Errorf("reencrypt: %w", err)
	}
	defer st.Close()
	if cursor != "" {
		fmt.Fprintf(sys.stdout, "resuming at cursor %s\n", cursor)
	}
	_, aofErr, err := pass.Run(ctx, st, cursor)
	if err != nil {
		return fmt.Errorf("%w (re-run to resume)", err)
	}
	reportAOF(sys, st, aofErr)
	return nil
}

// reportAOF says what became of the request to rewrite Redis's
// append-only file after a completed pass: until it is rewritten it still
// holds the values as they were written before the pass (unsealed, or
// under retired keys).
func reportAOF(sys system, st any, aofErr error) {
	if _, ok := st.(interface{ RewriteAOF(context.Context) error }); !ok {
		return
	}
	if aofErr != nil {
		fmt.Fprintf(sys.stdout, "rewriting the append-only file failed (%v): run BGREWRITEAOF on every primary yourself\n", aofErr)
		return
	}
	fmt.Fprintln(sys.stdout, "asked Redis to rewrite its append-only file (BGREWRITEAOF): the old one held values written before the pass. Replace older RDB snapshots and backups too.")
}

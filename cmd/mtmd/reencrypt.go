package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/backends"
)

// noSealFlag is the load test's hidden flag (not in --help).
const noSealFlag = "no-seal"

// reencryptFlag is --reencrypt: "" (off), "seal" (--reencrypt or
// --reencrypt=true/seal: seal what is not sealed under the current keys)
// or "rotate" (also a new data key version for every patient).
type reencryptFlag string

func (f *reencryptFlag) String() string   { return string(*f) }
func (f *reencryptFlag) IsBoolFlag() bool { return true }
func (f *reencryptFlag) Set(v string) error {
	switch strings.ToLower(v) {
	case "", "false", "off":
		*f = ""
	case "true", "seal":
		*f = "seal"
	case "rotate":
		*f = "rotate"
	default:
		return errors.New("want --reencrypt (seal) or --reencrypt=rotate")
	}
	return nil
}

func (f reencryptFlag) on() bool { return f != "" }

// reencryptState is where a background pass keeps its cursor, so that a
// restart resumes it; it holds "done" once the pass completed.
func reencryptState(dataDir string) string { return backends.ReencryptStateFile(dataDir) }

// reencryptPace is the pause between two steps, leaving the store to live
// traffic; a step is reencryptBatch patients.
const (
	reencryptPace  = 50 * time.Millisecond
	reencryptBatch = 100
)

// runReencrypt runs the re-encryption pass over st step by step until it
// completes or ctx ends, saving the cursor after each step in statePath;
// raw is the backend's own store (Redis: its AOF is rewritten after the
// pass). A pass that already completed (the file says "done") is not run
// again: delete the file to run another.
func runReencrypt(ctx context.Context, st store.AtRest, raw any, mode reencryptFlag, statePath string, logger *slog.Logger) error {
	lastLog := time.Now()
	pass := backends.Pass{
		StateFile: statePath,
		Raw:       raw,
		Options:   store.ReencryptOptions{Limit: reencryptBatch, RotateDataKeys: mode == "rotate"},
		Step: func(_ int, page, total store.ReencryptPage) error {
			if page.Next == "" {
				return nil
			}
			if time.Since(lastLog) > 10*time.Second {
				logger.Info("re-encryption pass", "patients", total.Patients, "resealed", total.Resealed, "cursor", page.Next)
				lastLog = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(reencryptPace):
				return nil
			}
		},
	}
	cursor, complete, err := pass.Cursor()
	if err != nil {
		return err
	}
	if complete {
		logger.Info("re-encryption pass already complete; delete the state file to run another, or drop --reencrypt", "state_file", statePath)
		return nil
	}
	logger.Info("re-encryption pass starting", "mode", string(mode), "resume_from", cursor)
	total, aofErr, err := pass.Run(ctx, st, cursor)
	if err != nil {
		return err
	}
	logger.Info("re-encryption pass complete", "patients", total.Patients, "resealed", total.Resealed, "retired_key_versions", total.Retired)
	// Redis: the AOF held the values as written before the pass.
	if aofErr != nil {
		logger.Error("rewriting Redis's append-only file after the pass failed: run BGREWRITEAOF on every primary", "error", aofErr.Error())
	} else if _, ok := raw.(interface{ RewriteAOF(context.Context) error }); ok {
		logger.Info("asked Redis to rewrite its append-only file after the pass; replace older RDB snapshots and backups too")
	}
	return nil
}

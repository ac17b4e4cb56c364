package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mtmapp/mtm/backend/store"
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
func reencryptState(dataDir string) string { return filepath.Join(dataDir, "reencrypt.cursor") }

const reencryptDone = "done"

// reencryptPace is the pause between two steps, leaving the store to live
// traffic; a step is reencryptBatch patients.
const (
	reencryptPace  = 50 * time.Millisecond
	reencryptBatch = 100
)

// runReencrypt runs the re-encryption pass over st step by step until it
// completes or ctx ends, saving the cursor after each step in statePath;
// raw is the backend's own store (Redis: its AOF is rewritten after the
// pass).
// A pass that already completed (the file says "done") is not run again:
// delete the file to run another.
func runReencrypt(ctx context.Context, st store.AtRest, raw any, mode reencryptFlag, statePath string, logger *slog.Logger) error {
	cursor := ""
	switch b, err := os.ReadFile(statePath); {
	case err == nil:
		cursor = strings.TrimSpace(string(b))
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("reencrypt: %w", err)
	}
	if cursor == reencryptDone {
		logger.Info("re-encryption pass already complete; delete the state file to run another, or drop --reencrypt", "state_file", statePath)
		return nil
	}
	logger.Info("re-encryption pass starting", "mode", string(mode), "resume_from", cursor)
	opts := store.ReencryptOptions{Limit: reencryptBatch, RotateDataKeys: mode == "rotate"}
	var total store.ReencryptPage
	lastLog := time.Now()
	for {
		page, err := st.Reencrypt(ctx, cursor, opts)
		if err != nil {
			return fmt.Errorf("reencrypt: at cursor %q: %w", cursor, err)
		}
		total.Patients += page.Patients
		total.Resealed += page.Resealed
		total.Retired += page.Retired
		cursor = page.Next
		save := cursor
		if save == "" {
			save = reencryptDone
		}
		if err := writeFileAtomic(statePath, []byte(save+"\n")); err != nil {
			return fmt.Errorf("reencrypt: saving the cursor: %w", err)
		}
		if cursor == "" {
			logger.Info("re-encryption pass complete", "patients", total.Patients, "resealed", total.Resealed, "retired_key_versions", total.Retired)
			// Redis: the AOF still holds the values as written before.
			if rw, ok := raw.(interface{ RewriteAOF(context.Context) error }); ok {
				if err := rw.RewriteAOF(ctx); err != nil {
					logger.Error("rewriting Redis's append-only file after the pass failed: run BGREWRITEAOF on every primary", "error", err.Error())
				} else {
					logger.Info("asked Redis to rewrite its append-only file after the pass; replace older RDB snapshots and backups too")
				}
			}
			return nil
		}
		if time.Since(lastLog) > 10*time.Second {
			logger.Info("re-encryption pass", "patients", total.Patients, "resealed", total.Resealed, "cursor", cursor)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(reencryptPace):
		}
	}
}

// writeFileAtomic replaces path with data (0600), whole or not at all.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".reencrypt-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

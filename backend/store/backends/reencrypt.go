package backends

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtmapp/mtm/backend/store"
)

// ReencryptDone is what a pass's state file holds once the pass completed.
const ReencryptDone = "done"

// ReencryptStateFile is the default state file of a pass over the store
// of dataDir (shared by mtmd --reencrypt and mtmctl reencrypt).
func ReencryptStateFile(dataDir string) string { return filepath.Join(dataDir, "reencrypt.cursor") }

// Pass is one re-encryption pass driven step by step, as mtmd --reencrypt
// and mtmctl reencrypt run it.
type Pass struct {
	// StateFile keeps the cursor after every step (ReencryptDone once
	// complete), so that a new run resumes an interrupted one.
	StateFile string
	// Resume, when set, is the cursor to start from instead of the state
	// file's.
	Resume  string
	Options store.ReencryptOptions
	// Step, when set, is told of every step (its number, the page and the
	// totals so far) and may end the pass by returning an error, which Run
	// returns (the cursor is saved by then).
	Step func(step int, page, total store.ReencryptPage) error
	// Raw is the backend's own store, asked to rewrite its append-only
	// file when the pass completes (the store passed to Run when nil, as
	// when Run gets the backend's store itself rather than a wrapper).
	Raw any
}

// Cursor is where Run starts: Resume, else the state file's cursor;
// complete reports that the state file says the pass is done.
func (p Pass) Cursor() (cursor string, complete bool, err error) {
	if p.Resume != "" {
		return p.Resume, false, nil
	}
	switch b, err := os.ReadFile(p.StateFile); {
	case err == nil:
		saved := strings.TrimSpace(string(b))
		return saved, saved == ReencryptDone, nil
	case errors.Is(err, fs.ErrNotExist):
		return "", false, nil
	default:
		return "", false, fmt.Errorf("reencrypt: state file: %w", err)
	}
}

// Run runs the pass over st from cursor until it completes, saving the
// cursor after each step. When it completes on a store that keeps an
// append-only file (Redis), it asks for the file to be rewritten: until
// then the file holds the values as written before the pass; aofErr is
// that request's failure (the pass itself succeeded).
func (p Pass) Run(ctx context.Context, st store.AtRest, cursor string) (total store.ReencryptPage, aofErr error, err error) {
	for step := 1; ; step++ {
		page, err := st.Reencrypt(ctx, cursor, p.Options)
		if err != nil {
			return total, nil, fmt.Errorf("reencrypt: step %d at cursor %q: %w", step, cursor, err)
		}
		total.Patients += page.Patients
		total.Resealed += page.Resealed
		total.Retired += page.Retired
		total.Next = page.Next
		saved := page.Next
		if saved == "" {
			saved = ReencryptDone
		}
		if err := writeFileAtomic(p.StateFile, []byte(saved+"\n")); err != nil {
			return total, nil, fmt.Errorf("reencrypt: saving the cursor %q: %w", page.Next, err)
		}
		if p.Step != nil {
			if err := p.Step(step, page, total); err != nil {
				return total, nil, err
			}
		}
		if page.Next == "" {
			raw := p.Raw
			if raw == nil {
				raw = st
			}
			if rw, ok := raw.(interface{ RewriteAOF(context.Context) error }); ok {
				aofErr = rw.RewriteAOF(ctx)
			}
			return total, aofErr, nil
		}
		cursor = page.Next
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

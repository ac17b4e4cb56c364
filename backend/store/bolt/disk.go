package bolt

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/mtmapp/mtm/backend/store"
)

// diskErrnos are the write failures that say the disk, not the record, is
// the problem: full, over quota, read-only or failing.
var diskErrnos = []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.EIO}

// diskFailure wraps a commit's error in store.ErrUnavailable when the disk
// refused the write, so callers answer unavailable and operators read the
// real cause ("no space left on device") in the error. Other errors come
// back unchanged. A failed commit has written nothing: bbolt rolls it back.
func diskFailure(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	for _, e := range diskErrnos {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
	}
	return err
}

package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// bucketScrub holds filler while ScrubFreePages runs; it is deleted at
// its end.
var bucketScrub = []byte("scrub")

// scrubRounds bounds ScrubFreePages' filler transactions; scrubBatch is
// how many free pages one of them takes at most.
const (
	scrubRounds = 64
	scrubBatch  = 4096
)

// ScrubFreePages overwrites the data file's free pages with zeros. bbolt
// does not clear a page it frees: a value overwritten or deleted (a clear
// record that was sealed since, an erased patient's wrapped key) stays in
// the file, and in any copy of it, until the page is reused. It writes
// filler until bbolt has taken every free page for it, then deletes the
// filler, whose pages are free again and hold zeros. Pages still pending
// for a read transaction that was open meanwhile are not reached; they
// are on the next call. It holds the writer slot one batch at a time.
func (s *Store) ScrubFreePages(ctx context.Context) error {
	filler := make([]byte, s.db.Info().PageSize/4) // three per page (FillPercent 1)
	var seq uint64
	for range scrubRounds {
		// Pages freed by the last commits are pending until a writer
		// starts with no older reader open: count them too.
		st := s.db.Stats()
		free := min(st.FreePageN+st.PendingPageN, scrubBatch)
		if free == 0 {
			break
		}
		// Leaves for about free pages less the filler's branch pages
		// (~170 keys each), so that the filler does not outgrow the free
		// pages and the file does not grow from one scrub to the next;
		// what is left is taken by the next round.
		leaves := max(free-free/128-1, 1)
		err := s.update(ctx, func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketScrub)
			if err != nil {
				return err
			}
			b.FillPercent = 1
			for range 3 * leaves {
				seq++
				if err := b.Put(seqKey(int64(seq)), filler); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bolt.ScrubFreePages: %w", err)
		}
		if after := s.db.Stats().FreePageN; after == 0 || after >= free {
			break // all taken, or no progress (pages held by a reader)
		}
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketScrub) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketScrub)
	})
	if err != nil {
		return fmt.Errorf("bolt.ScrubFreePages: %w", err)
	}
	return nil
}

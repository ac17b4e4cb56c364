package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// counter is the attempt count of one key in one fixed window.
type counter struct {
	WindowStart int64 // Unix nanoseconds, a multiple of Window
	Window      int64 // nanoseconds
	Count       int64
}

func (c counter) end() time.Time { return time.Unix(0, c.WindowStart+c.Window) }

// Allow counts one attempt for key in the fixed window of length window
// that holds now (windows start at multiples of window since the Unix
// epoch) and reports whether the count is within limit. When it is not,
// retryAfter is the time from now to the end of the window. Refused
// attempts count too. Counters of ended windows are deleted as later calls
// pass. Counters are kept under the blind index of key (keys hold e-mails
// and addresses).
func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	if window <= 0 {
		return false, 0, fmt.Errorf("bolt.Allow: window %v is not positive", window)
	}
	n, w := now.UnixNano(), int64(window)
	start := n - n%w
	if n%w < 0 {
		start -= w
	}
	key = s.blind(blindThrottl, key)
	var cnt counter
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		cnt = counter{}
		if err := s.pruneExpired(tx, now); err != nil {
			return err
		}
		b := tx.Bucket(bucketCounters)
		cur, err := get[counter](b, s.codec, key)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		case cur.WindowStart == start && cur.Window == w:
			cnt = cur
		default:
			if err := tx.Bucket(bucketExpiry).Delete(expiryKey(cur.end(), expiryCounter, key)); err != nil {
				return err
			}
		}
		if cnt.Count == 0 {
			cnt = counter{WindowStart: start, Window: w}
			if err := tx.Bucket(bucketExpiry).Put(expiryKey(cnt.end(), expiryCounter, key), nil); err != nil {
				return err
			}
		}
		cnt.Count++
		return put(b, s.codec, key, cnt)
	})
	if err != nil {
		return false, 0, fmt.Errorf("bolt.Allow: %w", err)
	}
	if cnt.Count <= int64(limit) {
		return true, 0, nil
	}
	return false, cnt.end().Sub(now), nil
}

// deleteCounterIfEnded deletes the counter of key if its window has ended
// at now.
func (s *Store) deleteCounterIfEnded(tx *bbolt.Tx, key string, now time.Time) error {
	b := tx.Bucket(bucketCounters)
	cur, err := get[counter](b, s.codec, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.end().After(now) {
		return nil
	}
	return b.Delete([]byte(key))
}

// ForgetAttempts takes back up to n attempts (all when n <= 0) from key's
// count in the fixed window of length window that holds now. A count of an
// earlier window, or none, is left alone.
func (s *Store) ForgetAttempts(ctx context.Context, key string, n int, window time.Duration, now time.Time) error {
	if window <= 0 {
		return fmt.Errorf("bolt.ForgetAttempts: window %v is not positive", window)
	}
	t, w := now.UnixNano(), int64(window)
	start := t - t%w
	if t%w < 0 {
		start -= w
	}
	key = s.blind(blindThrottl, key)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		cur, err := get[counter](b, s.codec, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.WindowStart != start || cur.Window != w {
			return nil
		}
		if n > 0 && int64(n) < cur.Count {
			cur.Count -= int64(n)
			return put(b, s.codec, key, cur)
		}
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(cur.end(), expiryCounter, key)); err != nil {
			return err
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("bolt.ForgetAttempts: %w", err)
	}
	return nil
}

package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Allow counts one attempt for key in the fixed window of length window
// that holds now (windows are aligned as time.Time.Truncate aligns them:
// whole minutes, hours, days in UTC) and reports whether the count is within limit; when it is not,
// retryAfter is the time until the window ends. The increment and the
// window's expiry are one script, and a re-sent script is not counted
// twice.
func (s *Store) Allow(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	const opName = "redisstore.Allow"
	if window <= 0 {
		return false, 0, fmt.Errorf("%s: window must be positive, got %v", opName, window)
	}
	start := now.Truncate(window)
	end := start.Add(window)
	// The counter outlives its window by a second, relative to Redis's own
	// clock, so skew between clocks cannot expire it early.
	ttl := (end.Sub(now) + time.Second).Milliseconds()
	status, count, err := s.run(ctx, s.scripts.allow, s.k.window(s.blind(blindThrottle, key), start), ttl)
	if err != nil {
		return false, 0, s.fail(opName, err)
	}
	if status != stOK {
		return false, 0, fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil {
		return false, 0, fmt.Errorf("%s: %w", opName, err)
	}
	if n > int64(limit) {
		return false, end.Sub(now), nil
	}
	return true, 0, nil
}

// ForgetAttempts takes back up to n attempts (all when n <= 0) from key's
// count in the fixed window of length window that holds now, in one
// script; a re-sent script does not take them back twice.
func (s *Store) ForgetAttempts(ctx context.Context, key string, n int, window time.Duration, now time.Time) error {
	const opName = "redisstore.ForgetAttempts"
	if window <= 0 {
		return fmt.Errorf("%s: window must be positive, got %v", opName, window)
	}
	if n < 0 {
		n = 0
	}
	status, _, err := s.run(ctx, s.scripts.forget, s.k.window(s.blind(blindThrottle, key), now.Truncate(window)), n)
	if err != nil {
		return s.fail(opName, err)
	}
	if status != stOK {
		return fmt.Errorf("%s: unexpected script status %q", opName, status)
	}
	return nil
}

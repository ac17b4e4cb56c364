package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mtmapp/mtm/backend/store"
)

// Settle retry backoff: full jitter between half and all of a delay that
// doubles from settleBackoff up to settleMaxBackoff.
const (
	settleBackoff    = 100 * time.Millisecond
	settleMaxBackoff = 5 * time.Second
	// settleMaxAnswered bounds attempts when the store answers with an
	// error other than store.ErrUnavailable (it answered: waiting longer
	// will not change its mind, and the lease must be let go).
	settleMaxAnswered = 3
)

// leaseKeeper renews the leases of one batch while it is worked. Renewals
// and settle attempts take turns (mu), so a renewal never runs after the
// batch settled.
type leaseKeeper struct {
	mu      sync.Mutex
	settled bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// keepLeases starts renewing rs (claimed from shard) every Renew until
// stop is called.
func (d *Dispatcher) keepLeases(ctx context.Context, shard int, rs []store.Reminder) *leaseKeeper {
	ctx, cancel := context.WithCancel(ctx)
	k := &leaseKeeper{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(k.done)
		held := len(rs)
		t := time.NewTicker(d.cfg.Renew)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			k.mu.Lock()
			if k.settled {
				k.mu.Unlock()
				return
			}
			n, err := d.cfg.Store.RenewReminderLeases(ctx, shard, rs, d.cfg.Now(), d.cfg.Lease)
			k.mu.Unlock()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				d.metrics.renewFailures.Inc()
				d.cfg.Logger.Debug("reminder lease renewal failed", slog.Int("shard", shard), slog.String("error", err.Error()))
			case n < held:
				d.metrics.leasesLost.Add(float64(held - n))
				d.cfg.Logger.Warn("reminder leases ran out while the batch was worked: another instance may send them too",
					slog.Int("shard", shard), slog.Int("lost", held-n), slog.Int("held", n))
				held = n
			}
		}
	}()
	return k
}

// stop ends the renewals and waits for the last one.
func (k *leaseKeeper) stop() {
	k.cancel()
	<-k.done
}

// settle records the batch, retrying with backoff while the store is
// unavailable, until ctx ends; the leases are renewed meanwhile. The
// pushes already went out, so giving up early would send them twice when
// the lease runs out.
func (d *Dispatcher) settle(ctx context.Context, shard int, k *leaseKeeper, s store.Settlement) error {
	delay := settleBackoff
	answered := 0
	for attempt := 1; ; attempt++ {
		k.mu.Lock()
		err := d.cfg.Store.SettleReminders(ctx, shard, s)
		k.settled = err == nil
		k.mu.Unlock()
		if err == nil {
			if attempt > 1 {
				d.cfg.Logger.Info("reminder batch settled after the store came back", slog.Int("shard", shard), slog.Int("attempts", attempt))
			}
			return nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			if answered++; answered >= settleMaxAnswered {
				return err
			}
		}
		if ctx.Err() != nil {
			return err
		}
		d.metrics.settleRetries.Inc()
		if attempt == 1 {
			d.cfg.Logger.Warn("reminder batch sent but not settled; retrying until the store answers", slog.Int("shard", shard),
				slog.Int("reminders", len(s.Done)), slog.String("error", err.Error()))
		}
		wait := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, settleMaxBackoff)
	}
}

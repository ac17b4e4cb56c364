package api

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// maxSpentAddresses bounds the client addresses refreshGate remembers as
// over the refresh budget. Past it an address is still refused, by the
// store's count after its next failure, only one check later.
const maxSpentAddresses = 4096

// refreshGate is the refresh budget (refreshAddress) counted on failures
// only. A refresh token is 256 random bits, so the budget is not what
// stops guessing; it bounds what one address can make the server check.
// Counting every attempt before the check and taking a success back (as
// the sign-ins do) costs a successful refresh, the call every app makes
// when it opens, two store writes besides the rotation; this way a success
// costs none. A failure is counted in the store, shared by every instance,
// and once an address's count is over the limit the instance that saw it
// refuses that address's refreshes, valid or not, unchecked until the
// window ends, with Retry-After. Each instance learns it from its own next
// failure at that address, so concurrent failures can overshoot the limit
// by the calls in flight, per instance.
type refreshGate struct {
	mu    sync.Mutex
	spent map[string]time.Time // client address → end of its spent window
}

func newRefreshGate() *refreshGate { return &refreshGate{spent: map[string]time.Time{}} }

// check refuses addr while it is known to be over the budget.
func (g *refreshGate) check(addr string, now time.Time) error {
	g.mu.Lock()
	until, ok := g.spent[addr]
	if ok && !now.Before(until) {
		delete(g.spent, addr)
		ok = false
	}
	g.mu.Unlock()
	if !ok {
		return nil
	}
	return exhausted(until.Sub(now))
}

// failed counts a failed refresh from addr and returns err, or
// resource_exhausted when the failure spent the budget.
func (g *refreshGate) failed(ctx context.Context, c Config, addr string, now time.Time, err error) error {
	b := refreshAddress
	ok, retryAfter, aerr := c.Store.Allow(ctx, b.prefix+addr, b.limit, b.window, now)
	if aerr != nil {
		c.Logger.WarnContext(ctx, "throttle: could not count a failed refresh", "error", aerr.Error())
		return err
	}
	if ok {
		return err
	}
	g.mu.Lock()
	if len(g.spent) >= maxSpentAddresses {
		for a, until := range g.spent {
			if !now.Before(until) {
				delete(g.spent, a)
			}
		}
	}
	if len(g.spent) < maxSpentAddresses {
		g.spent[addr] = now.Add(retryAfter)
	}
	g.mu.Unlock()
	return exhausted(retryAfter)
}

// exhausted is the answer to a throttled attempt, as Config.begin gives it.
func exhausted(retryAfter time.Duration) error {
	e := connect.NewError(connect.CodeResourceExhausted, errors.New("too many failed attempts, try again later"))
	e.Meta().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)+1))
	return e
}

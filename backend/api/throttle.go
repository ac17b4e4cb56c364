package api

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"connectrpc.com/connect"

	"github.com/mtmapp/mtm/backend/clientaddr"
)

// budget is a failure budget: at most limit failed attempts per fixed
// window for one key, counted in the store so that it holds across server
// instances. An attempt is counted before its credentials are checked (so
// concurrent guesses cannot overshoot the limit) and taken back when it
// succeeds: only failures stay counted.
type budget struct {
	prefix string
	limit  int
	window time.Duration
	// clears: a success clears the key's failures in the window, not only
	// its own attempt. Set on the budgets a success proves the owner for
	// (an account's, a device's, an activation code's); unset on those it
	// does not (a client address, a day's cap).
	clears bool
}

// Sign-in budgets. Login: a client that presents a valid device token of
// the account (one it got from an earlier successful sign-in) spends only
// its device's budgets; any other client spends its address's and the
// account's. So failures from unknown clients can exhaust the account's
// budget for unknown clients, but never the owner's device: nobody can
// lock the owner out of a device they signed in on. The daily caps bound
// the guesses at one account: loginAccountDay guesses per UTC day (so at
// most twice that in any 24 hours) from all unknown clients together, plus
// loginDeviceDay per device token (which only a successful sign-in hands
// out).
var (
	loginAddress    = budget{"login:addr:", 50, 15 * time.Minute, false}
	loginAccount    = budget{"login:account:", 10, 15 * time.Minute, true}
	loginAccountDay = budget{"login:account-day:", 50, 24 * time.Hour, false}
	loginDevice     = budget{"login:device:", 10, 15 * time.Minute, true}
	loginDeviceDay  = budget{"login:device-day:", 50, 24 * time.Hour, false}

	// Activation: per client address, and per code (an activation code is
	// 60 random bits, so the code's own budget bounds date-of-birth
	// guesses by someone who holds the code: at most 10 a day).
	activateAddress = budget{"activate:addr:", 20, 15 * time.Minute, false}
	activateCode    = budget{"activate:code:", 5, time.Hour, true}
	activateCodeDay = budget{"activate:code-day:", 10, 24 * time.Hour, false}

	// Caregiver sign-up redeems an invite code: per address and per code.
	signUpAddress = budget{"signup:addr:", 10, time.Hour, false}
	signUpCode    = budget{"signup:code:", 5, time.Hour, true}
	signUpCodeDay = budget{"signup:code-day:", 10, 24 * time.Hour, false}

	refreshAddress = budget{"refresh:addr:", 300, time.Minute, false}

	inviteAddress = budget{"invite:addr:", 20, 15 * time.Minute, false}
	inviteAccount = budget{"invite:account:", 10, 15 * time.Minute, true}
)

// charge is one budget spent for one key.
type charge struct {
	b   budget
	key string
}

// attempt is an attempt counted against some budgets; call succeeded or
// leave it counted as a failure.
type attempt struct {
	c       Config
	charged []charge
	at      time.Time
}

// begin counts one attempt against every charge, in order. When a budget
// is spent it takes back what it counted (a refused attempt is not a
// failure) and returns resource_exhausted with a Retry-After header.
func (c Config) begin(ctx context.Context, charges ...charge) (*attempt, error) {
	a := &attempt{c: c, at: c.Now()}
	for _, ch := range charges {
		ok, retryAfter, err := c.Store.Allow(ctx, ch.b.prefix+ch.key, ch.b.limit, ch.b.window, a.at)
		if err != nil {
			a.forget(ctx, false)
			return nil, err
		}
		a.charged = append(a.charged, ch)
		if !ok {
			a.forget(ctx, false)
			e := connect.NewError(connect.CodeResourceExhausted, errors.New("too many failed attempts, try again later"))
			e.Meta().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)+1))
			return nil, e
		}
	}
	return a, nil
}

// succeeded takes the attempt back from every budget, and clears the
// failures of the budgets a success clears.
func (a *attempt) succeeded(ctx context.Context) { a.forget(ctx, true) }

// forget takes the attempt back (best effort: a store error leaves one
// more failure counted, which errs on the safe side).
func (a *attempt) forget(ctx context.Context, success bool) {
	for _, ch := range a.charged {
		n := 1
		if success && ch.b.clears {
			n = 0
		}
		if err := a.c.Store.ForgetAttempts(context.WithoutCancel(ctx), ch.b.prefix+ch.key, n, ch.b.window, a.at); err != nil {
			a.c.Logger.WarnContext(ctx, "throttle: could not take back an attempt", "budget", ch.b.prefix, "error", err.Error())
		}
	}
	a.charged = nil
}

// clientAddress is the caller's address as clientaddr resolved it behind
// trusted proxies, or the TCP peer's when no resolver ran.
func clientAddress(ctx context.Context, peer connect.Peer) string {
	if a := clientaddr.String(ctx); a != "" {
		return a
	}
	host, _, err := net.SplitHostPort(peer.Addr)
	if err != nil {
		return peer.Addr
	}
	return host
}

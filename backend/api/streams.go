package api

import (
	"context"
	"errors"
	"sync"

	"connectrpc.com/connect"
)

// Open watch streams (WatchThread, WatchInbox) each hold a goroutine, a
// wake-up subscription and a connection for as long as the client likes,
// so they are capped: per principal, so that one token cannot starve the
// others, and per server, so that many tokens together cannot exhaust the
// process. A stream past either cap is refused with resource_exhausted
// before it touches the store; the client may retry once it closes one.

// Defaults for Config.MaxStreamsPerPrincipal and Config.MaxStreams: a
// patient or pharmacist with a few phones, tablets and console tabs, each
// watching a thread and the inbox, stays well under 16.
const (
	DefaultMaxStreamsPerPrincipal = 16
	DefaultMaxStreams             = 10000
)

// errTokenExpired ends a watch stream when the access token that opened
// it expires: a stream must not outlive the sign-in that authorized it.
var errTokenExpired = withReason(connect.CodeUnauthenticated, "the access token expired; refresh it and watch again from your cursor", ReasonTokenExpired)

var (
	errTooManyStreamsPrincipal = connect.NewError(connect.CodeResourceExhausted, errors.New("too many open streams for this sign-in; close one and retry"))
	errTooManyStreams          = connect.NewError(connect.CodeResourceExhausted, errors.New("server has too many open streams; retry later"))
)

// streamSlots counts open streams per principal and in total.
type streamSlots struct {
	perPrincipal, total int

	mu    sync.Mutex
	open  map[string]int
	count int
}

func newStreamSlots(perPrincipal, total int) *streamSlots {
	return &streamSlots{perPrincipal: perPrincipal, total: total, open: map[string]int{}}
}

// acquire takes a slot for the calling principal, or returns
// resource_exhausted. The returned release gives it back; call it once.
func (s *streamSlots) acquire(ctx context.Context) (release func(), err error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open[p.Subject] >= s.perPrincipal:
		return nil, errTooManyStreamsPrincipal
	case s.count >= s.total:
		return nil, errTooManyStreams
	}
	s.open[p.Subject]++
	s.count++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.open[p.Subject]--; s.open[p.Subject] <= 0 {
				delete(s.open, p.Subject)
			}
			s.count--
		})
	}, nil
}

package store

import (
	"context"
	"time"
)

// ConsoleSession is one browser session of the pharmacist console. The
// store keeps only a hash of the session id (the cookie's secret) and an
// opaque sealed blob (the console encrypts it with a key derived from the
// session id, so a copy of the store alone cannot use it).
type ConsoleSession struct {
	IDHash    string // auth.HashSecret of the session id; unique
	AccountID string // whose session ("" while signing in)
	Sealed    []byte // the console's session state, sealed
	ExpiresAt time.Time
}

// ConsoleSessions holds the console's browser sessions, so that any
// instance behind a load balancer can serve any request.
type ConsoleSessions interface {
	// PutConsoleSession creates or replaces the session with s.IDHash; it
	// dies at s.ExpiresAt.
	PutConsoleSession(ctx context.Context, s ConsoleSession) error
	// GetConsoleSession returns the session if it is live at now, else
	// ErrNotFound (unknown, deleted or expired).
	GetConsoleSession(ctx context.Context, idHash string, now time.Time) (ConsoleSession, error)
	// DeleteConsoleSession removes the session; an unknown one is not an
	// error.
	DeleteConsoleSession(ctx context.Context, idHash string) error
}

package store

import (
	"context"
	"time"
)

// SigningKey is one access-token signing key as the store keeps it, so
// that every instance sharing the store signs and verifies with the same
// keys. The store never sees the private key in the clear: Sealed is what
// the key set (backend/auth) encrypted it to.
type SigningKey struct {
	// KID is the key's id (its RFC 7638 thumbprint).
	KID string
	// Created orders the keys: the newest one signs.
	Created time.Time
	// Sealed is the encrypted private key.
	Sealed []byte
}

// SigningKeys holds the access-token signing keys of a deployment.
type SigningKeys interface {
	// PutSigningKey stores a new key. ErrAlreadyExists if the kid is taken
	// (nothing written).
	PutSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key, oldest (by Created, then KID)
	// first; none is not an error.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKey removes the key. ErrNotFound if there is none.
	DeleteSigningKey(ctx context.Context, kid string) error
}

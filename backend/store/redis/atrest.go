package redisstore

import (
	"context"
	"errors"

	"github.com/mtmapp/mtm/backend/store"
)

// errNotYet marks the at-rest operations this backend does not do yet
// (issue 17, being built).
var errNotYet = errors.New("not implemented yet")

// Reencrypt implements store.AtRest.
func (s *Store) Reencrypt(ctx context.Context, cursor string, opts store.ReencryptOptions) (store.ReencryptPage, error) {
	return store.ReencryptPage{}, errNotYet
}

package redisstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mtmapp/mtm/backend/store"
)

// Signing keys live in one hash, mtm:{sk}: kid -> 8 bytes of creation time
// (Unix nanoseconds, big-endian) followed by the sealed key.

// PutSigningKey stores a new signing key; store.ErrAlreadyExists if the kid
// is taken.
func (s *Store) PutSigningKey(ctx context.Context, k store.SigningKey) error {
	const opName = "redisstore.PutSigningKey"
	if k.KID == "" {
		return fmt.Errorf("%s: empty kid", opName)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(k.Created.UnixNano()))
	v = append(v, k.Sealed...)
	key := s.k.signingKeys()
	cctx, cancel := s.call(ctx)
	defer cancel()
	var set *redis.BoolCmd
	err := s.apply(cctx, key, func(p redis.Pipeliner) redis.Cmder {
		set = p.HSetNX(cctx, key, k.KID, v)
		return set
	})
	if err != nil {
		return s.fail(opName, err)
	}
	if !set.Val() {
		return fmt.Errorf("%s: %w", opName, store.ErrAlreadyExists)
	}
	return nil
}

// ListSigningKeys returns every signing key, oldest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	const opName = "redisstore.ListSigningKeys"
	cctx, cancel := s.call(ctx)
	defer cancel()
	all, err := s.rdb.HGetAll(cctx, s.k.signingKeys()).Result()
	if err != nil {
		return nil, s.fail(opName, err)
	}
	out := make([]store.SigningKey, 0, len(all))
	for kid, v := range all {
		if len(v) < 8 {
			return nil, fmt.Errorf("%s: key %q: record of %d bytes is too short", opName, kid, len(v))
		}
		out = append(out, store.SigningKey{
			KID:     kid,
			Created: time.Unix(0, int64(binary.BigEndian.Uint64([]byte(v[:8])))).UTC(),
			Sealed:  []byte(v[8:]),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].KID < out[j].KID
	})
	return out, nil
}

// DeleteSigningKey removes a signing key; store.ErrNotFound if there is
// none.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	const opName = "redisstore.DeleteSigningKey"
	key := s.k.signingKeys()
	cctx, cancel := s.call(ctx)
	defer cancel()
	var del *redis.IntCmd
	err := s.apply(cctx, key, func(p redis.Pipeliner) redis.Cmder {
		del = p.HDel(cctx, key, kid)
		return del
	})
	if err != nil {
		return s.fail(opName, err)
	}
	if del.Val() == 0 {
		return fmt.Errorf("%s: %w", opName, store.ErrNotFound)
	}
	return nil
}

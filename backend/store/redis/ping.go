package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Ping reports whether Redis answers within Options.Timeout (and ctx's
// deadline): the one node, the Sentinel-discovered primary, or every
// primary of a Cluster, because a Cluster missing a primary refuses the
// slots it held. The error wraps store.ErrUnavailable when Redis does not
// answer.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	var err error
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		err = c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Ping(ctx).Err()
		})
	} else {
		err = s.rdb.Ping(ctx).Err()
	}
	if err != nil {
		return s.fail("redisstore.Ping", err)
	}
	return nil
}

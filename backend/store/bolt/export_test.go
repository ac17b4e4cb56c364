package bolt

import bbolt "go.etcd.io/bbolt"

// Stats exposes bbolt's statistics to the tests.
func (s *Store) Stats() bbolt.Stats { return s.db.Stats() }

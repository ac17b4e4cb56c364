package bolt

import bbolt "go.etcd.io/bbolt"

// Stats exposes bbolt's statistics to the tests.
func (s *Store) Stats() bbolt.Stats { return s.db.Stats() }

// RehearseWrites makes every write function run twice from now on: once
// in a transaction that is rolled back, then for real (groupCommit.rehearse).
func (s *Store) RehearseWrites() { s.writes.rehearse = true }

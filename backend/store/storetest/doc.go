// Package storetest is the conformance suite of the storage contract in
// package store. Every backend's tests call Run with a constructor for a
// fresh, empty store; each behaviour the contract promises is a subtest.
//
// Where the contract leaves a detail open, the suite pins the reading the
// rest of the backend relies on:
//
//   - An activation code or refresh token is live while now is strictly
//     before its ExpiresAt; at ExpiresAt it has expired.
//   - After a reuse revoked a family, rotating any of its tokens fails with
//     ErrNotFound or ErrTokenReused; either is accepted. After
//     RevokeRefreshFamily, the newest token gives ErrNotFound.
//   - UpdatePatient and UpdateAccount store the current Version plus one,
//     whatever Version fn returns, and refuse (with any error) an fn that
//     changes the record's identity.
//   - Invites, like activation codes, are live while now is before
//     ExpiresAt.
//   - A fixed rate-limit window of length w holds now when it starts at a
//     multiple of w since the Unix epoch (for windows that divide a day,
//     the same as now.Truncate(w)).
//
// Backends may lose sub-microsecond precision, monotonic clock readings and
// the time.Location of stored times; the suite compares times with
// time.Time.Equal after truncating to the microsecond.
package storetest

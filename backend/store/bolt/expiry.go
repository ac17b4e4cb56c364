package bolt

import (
	"encoding/binary"
	"errors"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
)

// The expiry bucket indexes records that die at a known time, so that write
// transactions can delete a few dead ones as they pass (pruneExpired)
// instead of a background sweeper scanning whole buckets. Keys are
// 8 bytes of expiry time (ordered) | kind | id.

// Kinds of record in the expiry index.
const (
	expiryCode    byte = 'c' // activation code, id = code hash
	expiryToken   byte = 't' // refresh token, id = token hash
	expiryCounter byte = 'r' // rate-limit counter, id = key
	expiryInvite  byte = 'i' // caregiver invite, id = code hash
	expiryConsole byte = 's' // console session, id = id hash
)

// pruneBatch bounds the dead records one write transaction deletes.
const pruneBatch = 64

// expiryKey returns the index key of a record of kind with id that dies at at.
func expiryKey(at time.Time, kind byte, id string) []byte {
	k := make([]byte, 9, 9+len(id))
	// Flip the sign bit so that negative nanoseconds still sort first.
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano())^(1<<63))
	k[8] = kind
	return append(k, id...)
}

// pruneExpired deletes up to pruneBatch records whose expiry is not after
// now, with their index entries. The callers pass the now their method was
// given, so that tests with an injected clock see consistent behaviour.
func (s *Store) pruneExpired(tx *bbolt.Tx, now time.Time) error {
	limit := expiryKey(now, 0xff, "")[:8]
	exp := tx.Bucket(bucketExpiry)
	var dead [][]byte
	c := exp.Cursor()
	for k, _ := c.First(); k != nil && len(dead) < pruneBatch; k, _ = c.Next() {
		if string(k[:8]) > string(limit) {
			break
		}
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, k := range dead {
		if err := exp.Delete(k); err != nil {
			return err
		}
		id := string(k[9:])
		var err error
		switch k[8] {
		case expiryCode:
			err = s.deleteCode(tx, id)
		case expiryToken:
			err = s.deleteToken(tx, id)
		case expiryCounter:
			err = s.deleteCounterIfEnded(tx, id, now)
		case expiryInvite:
			err = s.deleteInvite(tx, id)
		case expiryConsole:
			err = s.deleteConsoleSessionIfDead(tx, id, now)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteCode removes the activation code stored under key hash (the blind
// index of its code hash, or the hash itself for one written before) and
// its patient index entry; a missing code is not an error.
func (s *Store) deleteCode(tx *bbolt.Tx, hash string) error {
	codes := tx.Bucket(bucketCodes)
	c, err := getSealed[store.ActivationCode](s, codes, kindCode, hash, hash)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	byPatient := tx.Bucket(bucketCodesByPatient)
	if string(byPatient.Get([]byte(c.PatientID))) == hash {
		if err := byPatient.Delete([]byte(c.PatientID)); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketExpiry).Delete(expiryKey(c.ExpiresAt, expiryCode, hash)); err != nil {
		return err
	}
	return codes.Delete([]byte(hash))
}

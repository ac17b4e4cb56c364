package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/tink"
	bbolt "go.etcd.io/bbolt"

	"github.com/mtmapp/mtm/backend/store"
	"github.com/mtmapp/mtm/backend/store/seal"
)

// PHI at rest (issue 17). Every value that names a patient or a medicine
// is stored sealed, as formatSealedV1, a clear header naming the owner of
// the data key that sealed it, and the ciphertext:
//
//	0x02 | uvarint len(owner) | owner | Tink AES-256-GCM ciphertext of the CBOR record
//
// The owner is a patient id (their own data key, kept wrapped in
// bucketPatientKeys, created with their first sealed value) or "" for the
// store's directory key (accounts, caregiver invites). The ciphertext's
// associated data binds the header, the key's scope and the record's kind
// and id (seal.DataKey.SealValue): a value copied to another record, kind
// or patient does not open (seal.ErrTampered, returned wrapped with ids
// only). Values written before sealing (formatCBORv1) are read as they are
// and sealed on their next write or by Reencrypt.
//
// Lookups by a clear value go through blind indexes (seal.Vault.Blind):
// the e-mail index, activation and invite code hashes, rate-limit keys and
// the name and birth-date index hold HMACs, never the clear value. Clear
// keys written before (legacy) are still found until Reencrypt moves them.
const formatSealedV1 byte = 2

// Kinds of sealed values (bound into each ciphertext).
const (
	kindPatient      = "patient"
	kindThread       = "thread"
	kindMessage      = "message"
	kindAudit        = "audit"
	kindChange       = "change"
	kindNotification = "notification"
	kindDose         = "dose"
	kindCode         = "activation-code"
	kindAccount      = "account"
	kindInvite       = "invite"
)

// Blind index purposes.
const (
	blindEmail   = "account-email"
	blindCode    = "activation-code"
	blindInvite  = "invite-code"
	blindThrottl = "throttle"
	blindNameDOB = "patient-name-dob"
)

// errNoDataKey means a sealed value's owner has no data key any more: the
// patient was deleted (their key first).
var errNoDataKey = errors.New("the data key that sealed this value is gone")

// vaultKeys reads the store's wrapped vault keys, creating them on the
// first open.
func vaultKeys(tx *bbolt.Tx, kek tink.AEAD) (seal.VaultKeys, error) {
	b := tx.Bucket(bucketVault)
	if v := b.Get([]byte("keys")); v != nil {
		return seal.UnmarshalVaultKeys(v)
	}
	keys, err := seal.NewVaultKeys(kek)
	if err != nil {
		return seal.VaultKeys{}, err
	}
	return keys, b.Put([]byte("keys"), keys.Marshal())
}

// rewrapVaultKeys wraps the store's own keys again under the KEK's
// current primary version (the end of a re-encryption pass: after a KEK
// rotation, the old KEK version can then be removed).
func (s *Store) rewrapVaultKeys(tx *bbolt.Tx) error {
	b := tx.Bucket(bucketVault)
	keys, err := seal.UnmarshalVaultKeys(b.Get([]byte("keys")))
	if err != nil {
		return err
	}
	if keys, err = s.vault.Rewrap(keys); err != nil {
		return err
	}
	return b.Put([]byte("keys"), keys.Marshal())
}

// dataKey returns the data key of owner (a patient id, or "" for the
// directory). With create, a patient without a key gets one (tx must be
// writable); without, errNoDataKey.
func (s *Store) dataKey(tx *bbolt.Tx, owner string, create bool) (*seal.DataKey, error) {
	if owner == "" {
		return s.vault.Directory(), nil
	}
	keys := tx.Bucket(bucketPatientKeys)
	wrapped := keys.Get([]byte(owner))
	if wrapped == nil {
		if !create {
			return nil, fmt.Errorf("%w (patient %s)", errNoDataKey, owner)
		}
		w, err := s.vault.NewPatientKey(owner)
		if err != nil {
			return nil, err
		}
		if err := keys.Put([]byte(owner), w); err != nil {
			return nil, err
		}
		wrapped = w
	}
	return s.vault.PatientKey(owner, wrapped)
}

func sealHeader(owner string) []byte {
	h := make([]byte, 0, 2+len(owner))
	h = append(h, formatSealedV1)
	h = binary.AppendUvarint(h, uint64(len(owner)))
	return append(h, owner...)
}

// sealedOwner parses a sealed value's header: its owner and the header's
// length.
func sealedOwner(v []byte) (string, int, error) {
	if len(v) < 2 || v[0] != formatSealedV1 {
		return "", 0, errors.New("not a sealed value")
	}
	n, m := binary.Uvarint(v[1:])
	if m <= 0 || uint64(len(v)-1-m) < n {
		return "", 0, fmt.Errorf("%w (damaged header)", seal.ErrTampered)
	}
	end := 1 + m + int(n)
	return string(v[1+m : end]), end, nil
}

// sealBytes seals plain (a CBOR record) under owner's data key, creating
// it if needed, as the value of kind and id.
func (s *Store) sealBytes(tx *bbolt.Tx, owner, kind, id string, plain []byte) ([]byte, error) {
	k, err := s.dataKey(tx, owner, true)
	if err != nil {
		return nil, err
	}
	return k.SealValue(kind, id, sealHeader(owner), plain)
}

// plainBytes returns the CBOR record of a stored value of kind and id,
// opening it when sealed.
func (s *Store) plainBytes(tx *bbolt.Tx, kind, id string, v []byte) ([]byte, error) {
	switch {
	case len(v) == 0:
		return nil, errors.New("empty value")
	case v[0] == formatCBORv1:
		return v[1:], nil
	case v[0] != formatSealedV1:
		return nil, fmt.Errorf("%s %s: unknown format %d", kind, id, v[0])
	}
	owner, hlen, err := sealedOwner(v)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	k, err := s.dataKey(tx, owner, false)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, id, err)
	}
	return k.OpenValue(kind, id, hlen, v)
}

// sealValue returns v's stored form: sealed under owner's data key as the
// value of kind and id, or clear CBOR when the store was opened NoSeal.
func sealValue[T any](s *Store, tx *bbolt.Tx, owner, kind, id string, v T) ([]byte, error) {
	enc, err := encode(s.codec, v)
	if err != nil || s.noSeal {
		return enc, err
	}
	return s.sealBytes(tx, owner, kind, id, enc[1:])
}

// openValue decodes a stored value of kind and id, sealed or clear.
func openValue[T any](s *Store, tx *bbolt.Tx, kind, id string, v []byte) (T, error) {
	plain, err := s.plainBytes(tx, kind, id, v)
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeCBOR[T](s.codec, plain)
}

// getSealed reads and opens the value under key in b (store.ErrNotFound
// if absent); id is the record's id bound into its ciphertext.
func getSealed[T any](s *Store, b *bbolt.Bucket, kind, key, id string) (T, error) {
	v := b.Get([]byte(key))
	if v == nil {
		var zero T
		return zero, store.ErrNotFound
	}
	return openValue[T](s, b.Tx(), kind, id, v)
}

// putSealed seals v under owner's key and stores it under key in b.
func putSealed[T any](s *Store, b *bbolt.Bucket, owner, kind, key, id string, v T) error {
	enc, err := sealValue(s, b.Tx(), owner, kind, id, v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), enc)
}

// current reports whether a stored value is sealed under owner's data key
// k at its primary version (a re-encryption pass leaves it alone).
func current(v []byte, owner string, k *seal.DataKey) bool {
	o, hlen, err := sealedOwner(v)
	return err == nil && o == owner && k.CurrentValue(hlen, v)
}

// blind returns the key under which an index holds value for purpose:
// its blind index, or the clear value when the store writes NoSeal.
func (s *Store) blind(purpose, value string) string {
	if s.noSeal {
		return value
	}
	return s.vault.Blind(purpose, value)
}

// lookupKey returns the key under which b holds the entry of a clear
// value: its blind index, or else the clear value itself (an entry
// written before blind indexes); "" when there is neither.
func (s *Store) lookupKey(b *bbolt.Bucket, purpose, value string) string {
	if k := s.vault.Blind(purpose, value); b.Get([]byte(k)) != nil {
		return k
	}
	if value != "" && b.Get([]byte(value)) != nil {
		return value
	}
	return ""
}

// nameDOBKey is the prefix of a patient's entries in bucketNameIndex:
// the blind index of their pharmacy, family name (trimmed, lower case) and
// birth date, and a zero byte.
func (s *Store) nameDOBKey(pharmacyID, familyName string, birthDate store.Date) []byte {
	v := pharmacyID + "\x00" + store.FoldName(familyName) + "\x00" + birthDate.String()
	return append([]byte(s.vault.Blind(blindNameDOB, v)), 0)
}

// syncNameIndex moves a patient's entry in the name and birth-date index
// from old's (zero Patient: none) to p's (zero Patient: none); with force
// it writes p's entry even when the name and date did not change (a
// record written before the index existed).
func (s *Store) syncNameIndex(tx *bbolt.Tx, old, p store.Patient, force bool) error {
	if s.noSeal {
		return nil // as before the index existed
	}
	same := old.ID == p.ID && old.PharmacyID == p.PharmacyID && old.DateOfBirth == p.DateOfBirth && store.FoldName(old.FamilyName) == store.FoldName(p.FamilyName)
	if same && !force {
		return nil
	}
	b := tx.Bucket(bucketNameIndex)
	if old.ID != "" && !same {
		if err := b.Delete(append(s.nameDOBKey(old.PharmacyID, old.FamilyName, old.DateOfBirth), old.ID...)); err != nil {
			return err
		}
	}
	if p.ID == "" {
		return nil
	}
	return b.Put(append(s.nameDOBKey(p.PharmacyID, p.FamilyName, p.DateOfBirth), p.ID...), nil)
}

package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// A store holds one Vault: everything it needs to keep PHI sealed at rest,
// the same for every backend.
//
//   - Each patient has a data key of their own (scope PatientScope(id)),
//     kept wrapped in the store beside their records. Everything that names
//     the patient or a medicine (the record, threads and messages,
//     reminders, self-reports, audit window) is sealed under it, so
//     deleting the wrapped key makes every copy unreadable.
//   - Records that are not a patient's (accounts, invites) are sealed under
//     the store-wide directory key (scope DirectoryScope).
//   - Lookups by a clear value (an e-mail, a name and date of birth, an
//     activation code's hash, a throttle key) go through Blind.
//
// The directory and index keys are created once, on the store's first
// open, and kept wrapped in the store (VaultKeys). A store opened with
// another key-encryption key fails with ErrWrongKEK instead of writing
// records nobody else can read.
type Vault struct {
	ring  *Keyring
	index *IndexKey
	dir   *DataKey
}

// Scopes of data keys.
const DirectoryScope = "directory"

// PatientScope is the scope of a patient's data key.
func PatientScope(patientID string) string { return "patient:" + patientID }

// ErrWrongKEK means the store's keys were wrapped by another
// key-encryption key than the one configured: a second instance started
// with its own local key file, or the wrong KMS key URI.
var ErrWrongKEK = errors.New("seal: the store's keys were not wrapped by this key-encryption key (another KEK file or KMS key?)")

// VaultKeys are the store's own keys, wrapped by the key-encryption key.
// A store keeps Marshal's bytes under one key and creates them with
// NewVaultKeys only when that key does not exist yet (create-if-absent, so
// that two processes opening a new store at once agree).
type VaultKeys struct {
	Index     []byte // wrapped IndexKey
	Directory []byte // wrapped data key of DirectoryScope
}

// NewVaultKeys creates a store's index and directory keys, wrapped by kek.
func NewVaultKeys(kek tink.AEAD) (VaultKeys, error) {
	idx, err := NewIndexKey(kek)
	if err != nil {
		return VaultKeys{}, err
	}
	dir, err := NewDataKey(kek, DirectoryScope)
	if err != nil {
		return VaultKeys{}, err
	}
	return VaultKeys{Index: idx, Directory: dir}, nil
}

const vaultKeysV1 = 1

// Marshal returns the keys as one value to store.
func (k VaultKeys) Marshal() []byte {
	b := []byte{vaultKeysV1}
	b = binary.AppendUvarint(b, uint64(len(k.Index)))
	b = append(b, k.Index...)
	b = binary.AppendUvarint(b, uint64(len(k.Directory)))
	return append(b, k.Directory...)
}

// UnmarshalVaultKeys reads what Marshal wrote.
func UnmarshalVaultKeys(b []byte) (VaultKeys, error) {
	bad := errors.New("seal: damaged vault keys")
	if len(b) < 1 || b[0] != vaultKeysV1 {
		return VaultKeys{}, bad
	}
	b = b[1:]
	var parts [2][]byte
	for i := range parts {
		n, m := binary.Uvarint(b)
		if m <= 0 || uint64(len(b)-m) < n {
			return VaultKeys{}, bad
		}
		parts[i] = bytes.Clone(b[m : m+int(n)])
		b = b[m+int(n):]
	}
	if len(b) != 0 {
		return VaultKeys{}, bad
	}
	return VaultKeys{Index: parts[0], Directory: parts[1]}, nil
}

// DefaultKeyCache is how many patients' data keys a Vault keeps open.
const DefaultKeyCache = 16384

// OpenVault opens the store's keys under kek and keeps up to cache
// patients' data keys open (DefaultKeyCache when cache <= 0). ErrWrongKEK
// when kek did not wrap keys.
func OpenVault(kek tink.AEAD, keys VaultKeys, cache int) (*Vault, error) {
	if kek == nil {
		return nil, errors.New("seal: no key-encryption key")
	}
	if cache <= 0 {
		cache = DefaultKeyCache
	}
	idx, err := OpenIndexKey(kek, keys.Index)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongKEK, err)
	}
	dir, err := OpenDataKey(kek, DirectoryScope, keys.Directory)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongKEK, err)
	}
	return &Vault{ring: NewKeyring(kek, cache), index: idx, dir: dir}, nil
}

// Blind is the blind index of value for purpose (see IndexKey.Index).
func (v *Vault) Blind(purpose, value string) string {
	s, err := v.index.Index(purpose, value)
	if err != nil {
		// The PRF only fails on a malformed keyset, which OpenVault
		// would have refused.
		panic(err)
	}
	return s
}

// Directory is the data key of records that are not a patient's.
func (v *Vault) Directory() *DataKey { return v.dir }

// NewPatientKey creates a patient's data key, wrapped, for the store to
// keep beside the patient's records.
func (v *Vault) NewPatientKey(patientID string) ([]byte, error) {
	return NewDataKey(v.ring.KEK(), PatientScope(patientID))
}

// PatientKey opens a patient's wrapped data key (cached).
func (v *Vault) PatientKey(patientID string, wrapped []byte) (*DataKey, error) {
	return v.ring.DataKey(PatientScope(patientID), wrapped)
}

// RotatePatientKey adds a new version to a patient's data key (new seals
// use it at once) and rewraps it under the KEK's current primary version.
func (v *Vault) RotatePatientKey(patientID string, wrapped []byte) ([]byte, error) {
	return RotateDataKey(v.ring.KEK(), PatientScope(patientID), wrapped)
}

// RetirePatientKeys drops every version of a patient's data key but the
// primary (after a re-encryption pass rewrote all their values).
func (v *Vault) RetirePatientKeys(patientID string, wrapped []byte) ([]byte, error) {
	return RetireKeys(v.ring.KEK(), PatientScope(patientID), wrapped)
}

// Forget drops a deleted patient's data key from memory.
func (v *Vault) Forget(patientID string) { v.ring.Forget(PatientScope(patientID)) }

// SealValue seals plain as the value of the record of kind and id,
// behind header: the result is header followed by the ciphertext, and the
// ciphertext opens only behind the same header bytes (a record's clear
// version header, which the store compares without the key, cannot be
// swapped). header may be empty.
func (k *DataKey) SealValue(kind, id string, header, plain []byte) ([]byte, error) {
	ct, err := k.aead.Encrypt(plain, valueAD(k.scope, kind, id, header))
	if err != nil {
		return nil, fmt.Errorf("seal: %s %s: %w", kind, id, err)
	}
	return append(bytes.Clone(header), ct...), nil
}

// OpenValue opens what SealValue wrote: value's first headerLen bytes are
// the clear header, the rest the ciphertext. ErrTampered if either was
// altered or the value belongs to another record, kind or scope.
func (k *DataKey) OpenValue(kind, id string, headerLen int, value []byte) ([]byte, error) {
	if headerLen < 0 || len(value) < headerLen {
		return nil, fmt.Errorf("%w (%s %s: short value)", ErrTampered, kind, id)
	}
	pt, err := k.aead.Decrypt(value[headerLen:], valueAD(k.scope, kind, id, value[:headerLen]))
	if err != nil {
		return nil, fmt.Errorf("%w (%s %s)", ErrTampered, kind, id)
	}
	return pt, nil
}

// CurrentValue reports whether a value SealValue wrote behind headerLen
// bytes is sealed under the key's primary version.
func (k *DataKey) CurrentValue(headerLen int, value []byte) bool {
	return len(value) >= headerLen && k.Current(value[headerLen:])
}

func valueAD(scope, kind, id string, header []byte) []byte {
	return fields(formatV1, "value", scope, kind, id, string(header))
}

// Rewrap returns keys (the store's own, as read from the store) wrapped
// again under the KEK's current primary version, keys unchanged: the last
// step of a re-encryption pass after a KEK rotation, so that the old KEK
// version can be removed once every pass completed. ErrWrongKEK when the
// KEK does not open them.
func (v *Vault) Rewrap(keys VaultKeys) (VaultKeys, error) {
	kek := v.ring.KEK()
	rewrap := func(wrapped []byte, ad []byte) ([]byte, error) {
		h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), kek, ad)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrongKEK, err)
		}
		var buf bytes.Buffer
		if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kek, ad); err != nil {
			return nil, fmt.Errorf("seal: rewrap: %w", err)
		}
		return buf.Bytes(), nil
	}
	idx, err := rewrap(keys.Index, keyAD("index", ""))
	if err != nil {
		return VaultKeys{}, err
	}
	dir, err := rewrap(keys.Directory, keyAD("dek", DirectoryScope))
	if err != nil {
		return VaultKeys{}, err
	}
	return VaultKeys{Index: idx, Directory: dir}, nil
}

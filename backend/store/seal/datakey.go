package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// formatV1 is bound into every associated data: a later format cannot be
// mistaken for this one.
const formatV1 = "mtm-seal-v1"

// ErrTampered means a ciphertext or wrapped key did not open under the
// key, scope, kind and id it was presented with: it was altered, or moved
// from where it was written. Callers report it as an internal error and
// log ids only.
var ErrTampered = errors.New("seal: ciphertext does not open here (altered or moved)")

// DataKey seals and opens the records of one scope (a patient).
type DataKey struct {
	scope   string
	aead    tink.AEAD
	primary uint32
	ids     []uint32
}

// NewDataKey creates a data key for scope and returns it wrapped by kek
// and bound to scope, as the store keeps it.
func NewDataKey(kek tink.AEAD, scope string) ([]byte, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("seal: new data key: %w", err)
	}
	return wrap(kek, scope, h)
}

// OpenDataKey unwraps the data key of scope. ErrTampered if wrapped was
// not written for scope under kek.
func OpenDataKey(kek tink.AEAD, scope string, wrapped []byte) (*DataKey, error) {
	h, err := unwrap(kek, scope, wrapped)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("seal: data key of %q: %w", scope, err)
	}
	dk := &DataKey{scope: scope, aead: a, primary: h.KeysetInfo().GetPrimaryKeyId()}
	for _, k := range h.KeysetInfo().GetKeyInfo() {
		dk.ids = append(dk.ids, k.GetKeyId())
	}
	return dk, nil
}

// RotateDataKey adds a new key version to scope's data key and makes it
// the one new seals use; ciphertexts under older versions still open.
func RotateDataKey(kek tink.AEAD, scope string, wrapped []byte) ([]byte, error) {
	h, err := unwrap(kek, scope, wrapped)
	if err != nil {
		return nil, err
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("seal: rotate data key of %q: %w", scope, err)
	}
	if err := m.SetPrimary(id); err != nil {
		return nil, fmt.Errorf("seal: rotate data key of %q: %w", scope, err)
	}
	if h, err = m.Handle(); err != nil {
		return nil, fmt.Errorf("seal: rotate data key of %q: %w", scope, err)
	}
	return wrap(kek, scope, h)
}

// RetireKeys removes from scope's data key every version other than the
// primary one: call it once a re-encryption pass has rewritten every
// ciphertext (none is left for which [DataKey.Current] is false). Whatever
// still used a retired version no longer opens.
func RetireKeys(kek tink.AEAD, scope string, wrapped []byte) ([]byte, error) {
	h, err := unwrap(kek, scope, wrapped)
	if err != nil {
		return nil, err
	}
	primary := h.KeysetInfo().GetPrimaryKeyId()
	m := keyset.NewManagerFromHandle(h)
	for _, k := range h.KeysetInfo().GetKeyInfo() {
		if id := k.GetKeyId(); id != primary {
			if err := m.Delete(id); err != nil {
				return nil, fmt.Errorf("seal: retire key %d of %q: %w", id, scope, err)
			}
		}
	}
	if h, err = m.Handle(); err != nil {
		return nil, fmt.Errorf("seal: retire keys of %q: %w", scope, err)
	}
	return wrap(kek, scope, h)
}

// Seal encrypts plaintext, the record of the given kind and id in the
// key's scope. The ciphertext opens only with the same scope, kind and id.
func (k *DataKey) Seal(kind, id string, plaintext []byte) ([]byte, error) {
	ct, err := k.aead.Encrypt(plaintext, recordAD(k.scope, kind, id))
	if err != nil {
		return nil, fmt.Errorf("seal: %s %s: %w", kind, id, err)
	}
	return ct, nil
}

// Open decrypts what Seal wrote for kind and id. ErrTampered if the
// ciphertext was altered or belongs to another record, kind or scope.
func (k *DataKey) Open(kind, id string, ciphertext []byte) ([]byte, error) {
	pt, err := k.aead.Decrypt(ciphertext, recordAD(k.scope, kind, id))
	if err != nil {
		return nil, fmt.Errorf("%w (%s %s)", ErrTampered, kind, id)
	}
	return pt, nil
}

// Current reports whether ciphertext was sealed under the key's primary
// version, that is whether a re-encryption pass may leave it alone.
func (k *DataKey) Current(ciphertext []byte) bool {
	id, ok := KeyVersion(ciphertext)
	return ok && id == k.primary
}

// Versions is the number of key versions the data key holds.
func (k *DataKey) Versions() int { return len(k.ids) }

// KeyVersion returns the id of the key version that sealed ciphertext
// (Tink's 5-byte prefix: 0x01 and the key id).
func KeyVersion(ciphertext []byte) (uint32, bool) {
	if len(ciphertext) < 5 || ciphertext[0] != 0x01 {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:5]), true
}

func wrap(kek tink.AEAD, scope string, h *keyset.Handle) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kek, keyAD("dek", scope)); err != nil {
		return nil, fmt.Errorf("seal: wrap data key of %q: %w", scope, err)
	}
	return buf.Bytes(), nil
}

func unwrap(kek tink.AEAD, scope string, wrapped []byte) (*keyset.Handle, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), kek, keyAD("dek", scope))
	if err != nil {
		return nil, fmt.Errorf("%w (data key of %q)", ErrTampered, scope)
	}
	return h, nil
}

// keyAD binds a wrapped key to its use and scope.
func keyAD(use, scope string) []byte { return fields(formatV1, use, scope) }

// recordAD binds a record's ciphertext to its scope, kind and id.
func recordAD(scope, kind, id string) []byte { return fields(formatV1, "record", scope, kind, id) }

// fields joins parts unambiguously: each is preceded by its length, so
// ("ab","c") and ("a","bc") differ.
func fields(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

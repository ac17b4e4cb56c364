package seal

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// IndexKey computes blind indexes: the store looks a value up by a keyed
// hash of it and never keeps the value in a key or an index.
type IndexKey struct{ prf *prf.Set }

// NewIndexKey creates a blind-index key (HMAC-SHA256) and returns it
// wrapped by kek, as the store keeps it. An index key is not rotated in
// place: a new one means rebuilding every index computed with the old.
func NewIndexKey(kek tink.AEAD) ([]byte, error) {
	h, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("seal: new index key: %w", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kek, keyAD("index", "")); err != nil {
		return nil, fmt.Errorf("seal: wrap index key: %w", err)
	}
	return buf.Bytes(), nil
}

// OpenIndexKey unwraps a blind-index key. ErrTampered if wrapped was not
// written under kek.
func OpenIndexKey(kek tink.AEAD, wrapped []byte) (*IndexKey, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), kek, keyAD("index", ""))
	if err != nil {
		return nil, fmt.Errorf("%w (index key)", ErrTampered)
	}
	p, err := prf.NewPRFSet(h)
	if err != nil {
		return nil, fmt.Errorf("seal: index key: %w", err)
	}
	return &IndexKey{prf: p}, nil
}

// Index is the blind index of value for purpose ("account-email",
// "patient-name-dob", …): 32 hex digits, the same for the same purpose and
// value, unrelated across purposes. Callers normalise value first (case,
// spacing) as the lookup needs.
func (k *IndexKey) Index(purpose, value string) (string, error) {
	out, err := k.prf.ComputePrimaryPRF(fields(formatV1, "index", purpose, value), 16)
	if err != nil {
		return "", fmt.Errorf("seal: index %s: %w", purpose, err)
	}
	return hex.EncodeToString(out), nil
}

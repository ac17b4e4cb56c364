package bolt

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Stored values are one format byte followed by the record. The byte lets a
// later version change the encoding and still read what an earlier one
// wrote.
const formatCBORv1 byte = 1

// codec encodes records as CBOR maps keyed by Go field names, with times
// as RFC 3339 text with nanoseconds and zone offset (exact round trip).
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

func newCodec() (codec, error) {
	enc, err := cbor.EncOptions{Time: cbor.TimeRFC3339Nano}.EncMode()
	if err != nil {
		return codec{}, fmt.Errorf("cbor encoder: %w", err)
	}
	dec, err := cbor.DecOptions{
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8DecodeInvalid, // we wrote it, valid UTF-8
	}.DecMode()
	if err != nil {
		return codec{}, fmt.Errorf("cbor decoder: %w", err)
	}
	return codec{enc: enc, dec: dec}, nil
}

// encode returns v's stored form.
func encode[T any](c codec, v T) ([]byte, error) {
	b, err := c.enc.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return append([]byte{formatCBORv1}, b...), nil
}

// decode reads a stored value. It copies everything it returns, so the
// result outlives the transaction that read b.
func decode[T any](c codec, b []byte) (T, error) {
	var v T
	if len(b) == 0 {
		return v, errors.New("decode: empty value")
	}
	if b[0] != formatCBORv1 {
		return v, fmt.Errorf("decode %T: unknown format %d", v, b[0])
	}
	return decodeCBOR[T](c, b[1:])
}

// decodeCBOR reads a CBOR record (a stored value without its format byte,
// or an opened sealed one), copying everything it returns.
func decodeCBOR[T any](c codec, b []byte) (T, error) {
	var v T
	if err := c.dec.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	return v, nil
}

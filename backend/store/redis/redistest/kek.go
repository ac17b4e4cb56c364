package redistest

import (
	"sync"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

var (
	kekOnce sync.Once
	kek     tink.AEAD
)

// KEK is the key-encryption key tests open Redis stores with
// (redisstore.Options.KEK): one in-memory AES-256-GCM key per test binary,
// so that every store a test opens on the same Redis reads the others'
// values.
func KEK() tink.AEAD {
	kekOnce.Do(func() { kek = NewKEK() })
	return kek
}

// NewKEK returns a fresh in-memory key-encryption key, unrelated to KEK
// (to open a store with the wrong key).
func NewKEK() tink.AEAD {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		panic("redistest: new key-encryption key: " + err.Error())
	}
	a, err := aead.New(h)
	if err != nil {
		panic("redistest: key-encryption key: " + err.Error())
	}
	return a
}

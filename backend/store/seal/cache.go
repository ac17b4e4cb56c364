package seal

import (
	"container/list"
	"crypto/sha256"
	"sync"

	"github.com/tink-crypto/tink-go/v2/tink"
)

// Keyring opens data keys under one key-encryption key and keeps the most
// recently used ones open, so that a record read costs one AES-GCM
// decryption and not a KMS call. A rotated data key (other wrapped bytes)
// is a different entry: the stale one ages out.
type Keyring struct {
	kek tink.AEAD
	max int

	mu      sync.Mutex
	entries map[cacheKey]*list.Element
	order   *list.List // front: most recently used
}

type cacheKey struct {
	scope   string
	wrapped [sha256.Size]byte
}

type cacheEntry struct {
	key cacheKey
	dk  *DataKey
}

// NewKeyring keeps up to max data keys open (at least 1).
func NewKeyring(kek tink.AEAD, max int) *Keyring {
	if max < 1 {
		max = 1
	}
	return &Keyring{kek: kek, max: max, entries: map[cacheKey]*list.Element{}, order: list.New()}
}

// KEK is the key-encryption key, for wrapping new data keys.
func (r *Keyring) KEK() tink.AEAD { return r.kek }

// DataKey opens scope's wrapped data key, from the cache when it is there.
// Errors as OpenDataKey.
func (r *Keyring) DataKey(scope string, wrapped []byte) (*DataKey, error) {
	ck := cacheKey{scope: scope, wrapped: sha256.Sum256(wrapped)}
	r.mu.Lock()
	if el, ok := r.entries[ck]; ok {
		r.order.MoveToFront(el)
		dk := el.Value.(*cacheEntry).dk
		r.mu.Unlock()
		return dk, nil
	}
	r.mu.Unlock()

	dk, err := OpenDataKey(r.kek, scope, wrapped)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.entries[ck]; ok { // opened meanwhile by another caller
		r.order.MoveToFront(el)
		return el.Value.(*cacheEntry).dk, nil
	}
	r.entries[ck] = r.order.PushFront(&cacheEntry{key: ck, dk: dk})
	for r.order.Len() > r.max {
		last := r.order.Back()
		r.order.Remove(last)
		delete(r.entries, last.Value.(*cacheEntry).key)
	}
	return dk, nil
}

// Forget drops every open data key of scope (the patient was deleted).
func (r *Keyring) Forget(scope string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ck, el := range r.entries {
		if ck.scope == scope {
			r.order.Remove(el)
			delete(r.entries, ck)
		}
	}
}

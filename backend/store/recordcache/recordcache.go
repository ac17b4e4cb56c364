// Package recordcache keeps patient records a store has decoded, so that
// reading the same stored bytes again costs a hash and a copy instead of a
// decode. An entry is found by the record's id and a hash of its stored
// bytes: a record changed by another process sharing the store (or by
// anyone) has other bytes and simply misses, so the cache needs no
// invalidation and is correct across instances. Its size is bounded by
// entries and by stored bytes; the least recently used entries go first. It
// starts no goroutines.
package recordcache

import (
	"container/list"
	"hash/maphash"
	"sync"

	"github.com/mtmapp/mtm/backend/store"
)

// Defaults for New: a few thousand records whose stored forms add up to at
// most 32 MiB (a 20-medicine record is about 5 KB stored).
const (
	DefaultEntries     = 4096
	DefaultStoredBytes = 32 << 20
)

// ForEntries returns a cache sized by its number of records alone: at most
// n records, and on average 8 KiB of stored form each (DefaultStoredBytes
// for DefaultEntries). n ≤ 0 means the defaults.
func ForEntries(n int) *Cache {
	if n <= 0 {
		return New(0, 0)
	}
	return New(n, n*(DefaultStoredBytes/DefaultEntries))
}

// Cache is a bounded cache of decoded patient records, safe for concurrent
// use. The zero value is not usable; call New.
type Cache struct {
	seed       maphash.Seed
	maxEntries int
	maxBytes   int

	mu     sync.Mutex
	lru    list.List // of *entry, most recently used first
	byID   map[string]*list.Element
	bytes  int // sum of the entries' stored lengths
	hits   uint64
	misses uint64
}

type entry struct {
	id  string
	sum uint64 // maphash of the stored bytes (and key, if any)
	n   int    // their length
	p   store.Patient
}

// New returns a cache of at most maxEntries records whose stored forms add
// up to at most maxStoredBytes; a record stored larger than that is not
// kept. Values ≤ 0 mean the defaults.
func New(maxEntries, maxStoredBytes int) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultEntries
	}
	if maxStoredBytes <= 0 {
		maxStoredBytes = DefaultStoredBytes
	}
	return &Cache{seed: maphash.MakeSeed(), maxEntries: maxEntries, maxBytes: maxStoredBytes, byID: make(map[string]*list.Element)}
}

// Patient returns the record with id decoded from stored: a deep copy of
// the cached record when these bytes were decoded before, else decode's
// result, which it keeps (a copy) for the next time. A decode error is
// returned as is and nothing is kept. The caller owns the returned record
// and may change it in place. A nil Cache only decodes.
//
// key is the rest of what decode reads besides the stored bytes (a
// patient's wrapped data key on Redis; nil when there is none). An entry
// is found only when both its stored bytes and its key are the same as
// when it was decoded, so a record whose key was deleted (a patient being
// erased) or replaced is decoded again, and fails or succeeds as it would
// without the cache.
func (c *Cache) Patient(id string, stored, key []byte, decode func([]byte) (store.Patient, error)) (store.Patient, error) {
	return c.get(id, stored, key, decode, true)
}

// Shared is Patient for a reader that only looks at the record (a page of
// a list): it returns the cached record itself, not a copy, so the caller
// must not change anything it holds (its slices, maps, nested records),
// which every later reader of these bytes would see; Clone it first to
// change it. Assigning a field of the returned struct value is fine.
func (c *Cache) Shared(id string, stored, key []byte, decode func([]byte) (store.Patient, error)) (store.Patient, error) {
	return c.get(id, stored, key, decode, false)
}

func (c *Cache) get(id string, stored, key []byte, decode func([]byte) (store.Patient, error), copied bool) (store.Patient, error) {
	if c == nil {
		return decode(stored)
	}
	sum := c.sum(stored, key)
	c.mu.Lock()
	if el, ok := c.byID[id]; ok {
		e := el.Value.(*entry)
		if e.sum == sum && e.n == len(stored) {
			c.lru.MoveToFront(el)
			c.hits++
			c.mu.Unlock()
			// Entries are never changed once stored: copy outside the lock.
			if !copied {
				return e.p, nil
			}
			return e.p.Clone(), nil
		}
	}
	c.misses++
	c.mu.Unlock()

	p, err := decode(stored)
	if err != nil {
		return p, err
	}
	if len(stored) <= c.maxBytes {
		kept := p
		if copied {
			kept = p.Clone()
		}
		c.put(&entry{id: id, sum: sum, n: len(stored), p: kept})
	}
	return p, nil
}

// sum identifies stored bytes and a key: the entry also keeps the stored
// length, which pins where one ends and the other begins.
func (c *Cache) sum(stored, key []byte) uint64 {
	if key == nil {
		return maphash.Bytes(c.seed, stored)
	}
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.Write(stored)
	h.WriteByte(1)
	h.Write(key)
	return h.Sum64()
}

func (c *Cache) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[e.id]; ok {
		c.bytes -= el.Value.(*entry).n
		el.Value = e
		c.lru.MoveToFront(el)
	} else {
		c.byID[e.id] = c.lru.PushFront(e)
	}
	c.bytes += e.n
	for c.lru.Len() > c.maxEntries || c.bytes > c.maxBytes {
		old := c.lru.Back()
		oe := old.Value.(*entry)
		c.lru.Remove(old)
		delete(c.byID, oe.id)
		c.bytes -= oe.n
	}
}

// Stats are a cache's counters since New.
type Stats struct {
	Hits, Misses uint64
	Entries      int
	StoredBytes  int
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Hits: c.hits, Misses: c.misses, Entries: c.lru.Len(), StoredBytes: c.bytes}
}

// Forget drops the record with id (a deleted patient: their clear record
// must not outlive them in memory).
func (c *Cache) Forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[id]; ok {
		c.bytes -= el.Value.(*entry).n
		c.lru.Remove(el)
		delete(c.byID, id)
	}
}

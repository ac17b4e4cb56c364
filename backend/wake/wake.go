// Package wake tells waiting streams that something they watch may have
// changed. A wake-up carries no data: the store stays the source of truth,
// and a woken stream re-reads it (notify-then-read). Wake-ups may be lost
// or repeated, so a stream also re-reads on a timer; they only make
// delivery fast.
//
// Hub fans wake-ups out inside one process (enough for the embedded
// store, which one process owns). Redis publishes them on Redis pub/sub so
// that every mtmd sharing a Redis deployment wakes its own waiters.
package wake

import (
	"context"
	"sync"
)

// Hub fans wake-ups out to the waiters of one process. It is safe for
// concurrent use; the zero value is not usable, call NewHub.
type Hub struct {
	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
}

type waiter struct{ ch chan struct{} }

// NewHub returns an empty in-process hub.
func NewHub() *Hub { return &Hub{waiters: map[string]map[*waiter]struct{}{}} }

// Subscribe registers a waiter on topic. The channel receives a value
// after each Notify of the topic (several notifications before the waiter
// reads collapse into one). cancel unregisters it; call it exactly once.
func (h *Hub) Subscribe(topic string) (wakeups <-chan struct{}, cancel func()) {
	w := &waiter{ch: make(chan struct{}, 1)}
	h.mu.Lock()
	set := h.waiters[topic]
	if set == nil {
		set = map[*waiter]struct{}{}
		h.waiters[topic] = set
	}
	set[w] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(set, w)
			if len(set) == 0 {
				delete(h.waiters, topic)
			}
		})
	}
}

// Notify wakes every waiter of the topics in this process. It never
// blocks and never fails.
func (h *Hub) Notify(_ context.Context, topics ...string) error {
	for _, topic := range topics {
		h.wake(topic)
	}
	return nil
}

// Watching reports how many waiters topic has in this process.
func (h *Hub) Watching(topic string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters[topic])
}

func (h *Hub) wake(topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.waiters[topic] {
		select {
		case w.ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

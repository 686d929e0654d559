package rpc

import (
	"context"
	"sync"
)

// An answer may keep something taken for it until it has been written: a
// method that reads a large result into memory holds its share of a
// memory budget (Hold) until the bytes of its answer are gone to the
// client, or dropped.

type holdsKey struct{}

type batchKey struct{}

// holds are the releases of one message's answer, run once it is written.
type holds struct {
	mu       sync.Mutex
	releases []func()
}

// withHolds returns ctx carrying a fresh set of holds and the function
// that releases them all, to call once the answer is written or dropped.
func withHolds(ctx context.Context) (context.Context, func()) {
	h := &holds{}
	return context.WithValue(ctx, holdsKey{}, h), h.releaseAll
}

func (h *holds) releaseAll() {
	h.mu.Lock()
	releases := h.releases
	h.releases = nil
	h.mu.Unlock()
	for _, release := range releases {
		release()
	}
}

// Hold has release run once the answer of the request ctx belongs to has
// been written to the client (or dropped), and reports true. Outside a
// message answered by this package it reports false and runs nothing: the
// caller releases when it is done.
func Hold(ctx context.Context, release func()) bool {
	h, ok := ctx.Value(holdsKey{}).(*holds)
	if !ok {
		return false
	}
	h.mu.Lock()
	h.releases = append(h.releases, release)
	h.mu.Unlock()
	return true
}

// InBatch reports whether the request ctx belongs to is one of a batch.
// A batch is answered whole, so what its calls hold is released only
// after the last: a call of a batch must not wait for something another
// call of the same batch may hold.
func InBatch(ctx context.Context) bool {
	return ctx.Value(batchKey{}) != nil
}

package service

import (
	"sync"
	"time"
)

// readySignal wakes long-polling claims when a task may have become
// ready: created, requeued, unassigned, or a delayed task come due. Waiters
// take the current channel and block on it; notify closes it and installs
// a fresh one, so one notify wakes every waiter at once and a waiter that
// took the channel before the notify can never miss it.
type readySignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newReadySignal() *readySignal { return &readySignal{ch: make(chan struct{})} }

// wait returns the channel closed by the next notify.
func (r *readySignal) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ch
}

// notify wakes every current waiter.
func (r *readySignal) notify() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.ch)
	r.ch = make(chan struct{})
}

// notifyAt wakes the waiters after d (a delayed task coming due).
func (r *readySignal) notifyAt(d time.Duration) {
	if d <= 0 {
		r.notify()
		return
	}
	time.AfterFunc(d, r.notify)
}

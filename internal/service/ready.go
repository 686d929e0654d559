package service

import (
	"context"
	"sync"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

// readySignal wakes long-polling claims when a task may have become
// ready: created, requeued, unassigned, or a delayed task come due. Waiters
// take the current channel and block on it; notify closes it and installs
// a fresh one, so one notify wakes every waiter at once and a waiter that
// took the channel before the notify can never miss it.
type readySignal struct {
	mu sync.Mutex
	ch chan struct{}
	// timer wakes the waiters when the earliest known delayed task is due
	// (at due); the sweeper reports the next one after it fires.
	timer *time.Timer
	due   time.Time
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

// notifyAt wakes the waiters after d, unless a wake-up is already set for
// earlier than that.
func (r *readySignal) notifyAt(d time.Duration) {
	if d <= 0 {
		r.notify()
		return
	}
	at := time.Now().Add(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.timer == nil:
		r.timer = time.AfterFunc(d, r.fire)
	case r.due.IsZero() || at.Before(r.due):
		r.timer.Reset(d)
	default:
		return
	}
	r.due = at
}

func (r *readySignal) fire() {
	r.mu.Lock()
	r.due = time.Time{}
	r.mu.Unlock()
	r.notify()
}

// RelayReady wakes the long polls of this process whenever the store
// reports that a task may have become claimable through another process
// (store.ReadyNotifier), until ctx ends. With a store of one process it
// returns at once.
func (s *Service) RelayReady(ctx context.Context) {
	n, ok := s.store.(store.ReadyNotifier)
	if !ok {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.TasksReady():
			s.ready.notify()
		}
	}
}

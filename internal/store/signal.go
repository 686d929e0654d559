package store

import "sync"

// Signal is a broadcast a backend fires when something happened (events
// appended, tasks ready): Wait returns a channel that the next Fire
// closes, so one Fire wakes every waiter at once and a waiter that took
// the channel before the Fire never misses it. The zero Signal is ready
// to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns the channel closed by the next Fire.
func (s *Signal) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Fire wakes every current waiter.
func (s *Signal) Fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}

package redispg

import (
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

// A script's own message may reach the listener before the call that ran
// the script notes its reply. The listener then fires the events signal;
// the call, finding seq noted already, must not return before that fire,
// or the waiter its caller takes next is woken by events it came after.
func TestNotedReturnsAfterTheFireOfSeq(t *testing.T) {
	s := &Store{events: &store.Signal{}, ready: &store.Signal{}}
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.firing = func() { // the first fire, the listener's, is held
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	listened := make(chan struct{})
	go func() { // the listener, given the script's message "r:1"
		s.noted(1, true)
		close(listened)
	}()
	<-entered

	next := make(chan (<-chan struct{}), 1)
	go func() { // the call that ran the script, then its caller
		s.noted(1, true)
		next <- s.EventsChanged()
	}()
	var changed <-chan struct{}
	select {
	case changed = <-next: // it returned while the listener's fire was pending
	case <-time.After(100 * time.Millisecond): // it waits for that fire
	}
	close(release)
	<-listened
	if changed == nil {
		changed = <-next
	}
	select {
	case <-changed:
		t.Fatal("EventsChanged taken after noted(1) returned was closed by the fire for event 1")
	default:
	}
}

package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// A sweep stops at its bound and says so; the next one does the rest.
func TestSweepBounded(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	const tasks = sweepMaxTasks + 10
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := g + 1; n <= tasks; n += 8 {
				create(t, s, task(n))
			}
		})
	}
	wg.Wait()
	register(t, s, "w1")
	claimed, err := s.ClaimTasks(t.Context(), store.ClaimTasksParams{WorkerID: "w1", MaxTasks: tasks, Now: t0.Add(time.Minute)})
	if err != nil || len(claimed) != tasks {
		t.Fatalf("claimed %d tasks, %v; want %d", len(claimed), err, tasks)
	}
	expired := t0.Add(time.Minute + taskwire.DefaultLeaseMs*time.Millisecond)
	for _, want := range []store.SweepResult{
		{Requeued: sweepMaxTasks, More: true},
		{Requeued: tasks - sweepMaxTasks},
		{},
	} {
		got, err := s.Sweep(t.Context(), store.SweepParams{Now: expired, WorkerTimeout: time.Hour})
		if err != nil || *got != want {
			t.Errorf("Sweep = %+v, %v; want %+v", got, err, want)
		}
	}
}

// Trimming the event log stops at its bound too, so that a sweep holds
// the writer briefly however many events are due.
func TestSweepTrimsEventsBounded(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	const events, keep = sweepMaxEvents + 10, 5
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := g + 1; n <= events; n += 8 {
				create(t, s, task(n)) // one task.created event each
			}
		})
	}
	wg.Wait()
	for _, want := range []store.SweepResult{
		{EventsDropped: sweepMaxEvents, More: true},
		{EventsDropped: events - keep - sweepMaxEvents},
		{},
	} {
		got, err := s.Sweep(t.Context(), store.SweepParams{Now: t0.Add(time.Hour), MaxEvents: keep})
		if err != nil || *got != want {
			t.Errorf("Sweep = %+v, %v; want %+v", got, err, want)
		}
	}
	if evs, err := s.ReadEvents(t.Context(), "", 10); err != nil || len(evs) != keep {
		t.Errorf("ReadEvents = %d events, %v; want the newest %d", len(evs), err, keep)
	}
}

// Event IDs are the decimal seqs of the log, from 1; an ID beyond the last
// issued is an error, not an empty page.
func TestEventIDs(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	for n := 1; n <= 3; n++ {
		create(t, s, task(n))
	}
	evs, err := s.ReadEvents(t.Context(), "", 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("ReadEvents = %d events, %v; want 3", len(evs), err)
	}
	for i, e := range evs {
		if want := fmt.Sprint(i + 1); e.ID != want {
			t.Errorf("event %d: id %q, want %q", i, e.ID, want)
		}
	}
	if evs, err := s.ReadEvents(t.Context(), "3", 10); err != nil || len(evs) != 0 {
		t.Errorf("after the last: %d events, %v; want none", len(evs), err)
	}
	if evs, err := s.ReadEvents(t.Context(), "0", 10); err != nil || len(evs) != 3 {
		t.Errorf("after \"0\": %d events, %v; want all 3", len(evs), err)
	}
	for _, bad := range []string{"4", "-1", "03", "1e3", "99999999999999999999"} {
		if _, err := s.ReadEvents(t.Context(), bad, 10); err == nil {
			t.Errorf("ReadEvents(after %q) succeeded, want an error", bad)
		}
	}
}

// The events of an op that fails are rolled back with it and wake no one,
// even when the op appended them before failing.
func TestFailedOpEventsRolledBack(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	changed := s.EventsChanged()
	errBoom := errors.New("boom")
	err := s.w.do(t.Context(), func(tx *writeTx) error {
		tx.appendEvent(store.TaskDeletedEvent("t-1", "alice", t0))
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("op err = %v, want boom", err)
	}
	select {
	case <-changed:
		t.Errorf("EventsChanged closed by an op that failed")
	default:
	}
	if evs, err := s.ReadEvents(t.Context(), "", 10); err != nil || len(evs) != 0 {
		t.Errorf("ReadEvents = %d events, %v; want none", len(evs), err)
	}
}

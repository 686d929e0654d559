package storetest

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testStats(t *testing.T, newStore newStoreFunc) {
	// Stats count every queue's tasks by status, find each queue's oldest
	// pending task (reserved ones included), and count workers by status.
	t.Run("Counts", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		// default: 1 pending, 2 pending, 3 in_progress
		// q2:      4 completed, 5 failed, 6 pending (reserved)
		// q3:      7 completed
		for n, q := range []string{"default", "default", "default", "q2", "q2", "q2", "q3"} {
			tk := newTask(n + 1)
			tk.Queue = q
			switch n + 1 {
			case 3:
				tk.Priority = 90 // claimed before the older 1 and 2
			case 6:
				tk.Priority = 10 // left pending by the claims below
			}
			s.create(tk)
		}
		s.register("w1")
		s.register("w2")
		at := t0.Add(time.Second)
		s.reclaimAll("w1", at, taskIDs(3), "default")
		s.reclaimAll("w1", at, taskIDs(4, 5), "q2")
		s.reclaimAll("w2", at, taskIDs(7), "q3")
		s.complete(store.CompleteTaskParams{ID: taskID(4), WorkerID: "w1", Now: at})
		s.complete(store.CompleteTaskParams{ID: taskID(5), WorkerID: "w1", Failed: true, Error: "boom", Now: at})
		s.complete(store.CompleteTaskParams{ID: taskID(7), WorkerID: "w2", Now: at})
		s.assign(taskID(6), "w2", at)

		want := &store.Stats{
			Queues: []store.QueueStats{
				{Queue: "default", ByStatus: map[taskwire.Status]int{taskwire.StatusPending: 2, taskwire.StatusInProgress: 1},
					OldestPending: newTask(1).CreatedAt},
				{Queue: "q2", ByStatus: map[taskwire.Status]int{taskwire.StatusCompleted: 1, taskwire.StatusFailed: 1, taskwire.StatusPending: 1},
					OldestPending: newTask(6).CreatedAt},
				{Queue: "q3", ByStatus: map[taskwire.Status]int{taskwire.StatusCompleted: 1}},
			},
			Workers: map[taskwire.WorkerStatus]int{taskwire.WorkerOnline: 2},
		}
		if diff := cmp.Diff(want, s.stats(at)); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
	})

	// The oldest pending task of a queue is the one ready the longest,
	// counted from when it became ready (the later of its creation and its
	// RunAt); a delayed task not due yet does not count.
	t.Run("OldestReady", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		// q: 1 delayed an hour, 2 ready and created after 1
		// r: 3 delayed an hour, alone
		delayed, ready, alone := newTask(1), newTask(2), newTask(3)
		delayed.Queue, ready.Queue, alone.Queue = "q", "q", "r"
		delayed.RunAt = delayed.CreatedAt.Add(time.Hour)
		alone.RunAt = alone.CreatedAt.Add(time.Hour)
		s.create(delayed, ready, alone)
		pending := map[taskwire.Status]int{taskwire.StatusPending: 1}
		two := map[taskwire.Status]int{taskwire.StatusPending: 2}
		for _, c := range []struct {
			name string
			now  time.Time
			q, r time.Time // OldestPending of q and r
		}{
			{"before the delays", t0.Add(time.Minute), ready.CreatedAt, time.Time{}},
			{"at the first RunAt", delayed.RunAt, ready.CreatedAt, time.Time{}},
			{"after the delays", t0.Add(2 * time.Hour), ready.CreatedAt, alone.RunAt},
		} {
			want := &store.Stats{
				Queues: []store.QueueStats{
					{Queue: "q", ByStatus: two, OldestPending: c.q},
					{Queue: "r", ByStatus: pending, OldestPending: c.r},
				},
				Workers: map[taskwire.WorkerStatus]int{},
			}
			if diff := cmp.Diff(want, s.stats(c.now)); diff != "" {
				t.Errorf("Stats %s (-want +got):\n%s", c.name, diff)
			}
		}
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		if diff := cmp.Diff(&store.Stats{Workers: map[taskwire.WorkerStatus]int{}}, s.stats(t0)); diff != "" {
			t.Errorf("Stats of an empty store (-want +got):\n%s", diff)
		}
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		if err := s.st.Ping(s.ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

// stats returns Stats as of now in a form to compare: queues by name,
// zero counts left out, empty maps for none.
func (s *bundle) stats(now time.Time) *store.Stats {
	s.t.Helper()
	st, err := s.st.Stats(s.ctx, now)
	if err != nil {
		s.t.Fatalf("Stats: %v", err)
	}
	out := &store.Stats{Workers: map[taskwire.WorkerStatus]int{}}
	for k, n := range st.Workers {
		if n != 0 {
			out.Workers[k] = n
		}
	}
	for _, q := range st.Queues {
		q.ByStatus = maps.Clone(q.ByStatus)
		maps.DeleteFunc(q.ByStatus, func(_ taskwire.Status, n int) bool { return n == 0 })
		out.Queues = append(out.Queues, q)
	}
	slices.SortFunc(out.Queues, func(a, b store.QueueStats) int { return strings.Compare(a.Queue, b.Queue) })
	return out
}

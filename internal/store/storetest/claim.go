package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testClaim(t *testing.T, newStore newStoreFunc) {
	// Highest priority first, oldest first within a priority.
	t.Run("PriorityThenFIFO", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		for n, prio := range []int{50, 80, 50, 80, 10, 100, 0} {
			tk := newTask(n + 1)
			tk.Priority = prio
			s.create(tk)
		}
		s.register("w1")
		var got []string
		for range 8 {
			got = append(got, ids(s.claim("w1", t0.Add(10*time.Second), 1))...)
		}
		if diff := cmp.Diff(taskIDs(6, 2, 4, 1, 3, 5, 7), got); diff != "" {
			t.Errorf("claim order (-want +got):\n%s", diff)
		}
	})

	// One claim takes up to MaxTasks tasks, in claim order.
	t.Run("MaxTasks", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			maxTasks int
			want     [][]string // what each claim returns
		}{
			// One at a time.
			{"One", 1, [][]string{taskIDs(1), taskIDs(2), taskIDs(3)}},
			// Several at once.
			{"Three", 3, [][]string{taskIDs(1, 2, 3), taskIDs(4, 5, 6), taskIDs(7, 8, 9)}},
			// The most task.claim allows; the next claim gets the rest, then nothing.
			{"Ten", taskwire.MaxClaimTasks, [][]string{taskIDs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), taskIDs(11, 12), nil}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				for n := 1; n <= 12; n++ {
					s.create(newTask(n))
				}
				s.register("w1")
				var got [][]string
				for range tt.want {
					got = append(got, ids(s.claim("w1", t0.Add(10*time.Second), tt.maxTasks)))
				}
				if diff := cmp.Diff(tt.want, got, taskOpts); diff != "" {
					t.Errorf("claims (-want +got):\n%s", diff)
				}
			})
		}
	})

	// A claimed task is in_progress, assigned to the worker, one attempt
	// further, leased for its LeaseMs from the claim.
	t.Run("ClaimedTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		tk.LeaseMs = 45_000
		tk.Metadata = json.RawMessage(`{"a":1}`)
		s.create(tk)
		s.register("w1")

		now := t0.Add(10 * time.Second)
		want := tk
		want.Status = taskwire.StatusInProgress
		want.AssignedTo = "w1"
		want.Attempt = 1
		want.LeaseExpiresAt = now.Add(45 * time.Second)
		want.UpdatedAt = now
		got := s.claim("w1", now, 1)
		if len(got) != 1 {
			t.Fatalf("claimed %v, want [%s]", ids(got), tk.ID)
		}
		wantReturned(t, "ClaimTasks", want, got[0])
		s.wantStored(want)

		// Back in the queue and claimed again: the second attempt.
		s.unassign(tk.ID, t0.Add(20*time.Second))
		now = t0.Add(30 * time.Second)
		want.Attempt = 2
		want.LeaseExpiresAt = now.Add(45 * time.Second)
		want.UpdatedAt = now
		got = s.claim("w1", now, 1)
		if len(got) != 1 {
			t.Fatalf("claimed %v again, want [%s]", ids(got), tk.ID)
		}
		wantReturned(t, "ClaimTasks (again)", want, got[0])
	})

	t.Run("Queues", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name       string
			registered []string // the worker's queues
			claim      []string // ClaimTasksParams.Queues
			want       []string
		}{
			// Only the given queues, by priority across them.
			{"Given", []string{"a"}, []string{"a", "c"}, taskIDs(4, 1)},
			// Given queues override the registered ones.
			{"GivenOverRegistered", []string{"a"}, []string{"b"}, taskIDs(2)},
			// None given: the worker's registered queues.
			{"Registered", []string{"a", "b"}, nil, taskIDs(2, 1)},
			// None given and none registered: the default queue.
			{"Default", nil, nil, taskIDs(3)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				for n, q := range []struct {
					queue string
					prio  int
				}{{"a", 50}, {"b", 90}, {taskwire.DefaultQueue, 70}, {"c", 60}} {
					tk := newTask(n + 1)
					tk.Queue, tk.Priority = q.queue, q.prio
					s.create(tk)
				}
				s.register("w1", tt.registered...)
				got := s.claim("w1", t0.Add(10*time.Second), 10, tt.claim...)
				if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
					t.Errorf("claimed (-want +got):\n%s", diff)
				}
			})
		}
	})

	// A delayed task is not claimable before its RunAt, whatever its priority.
	t.Run("Delayed", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		ready, delayed := newTask(1), newTask(2)
		ready.Priority = 10
		delayed.Priority = 90
		delayed.RunAt = t0.Add(time.Minute)
		s.create(ready, delayed)
		s.register("w1")
		for _, c := range []struct {
			at   time.Time
			want []string
		}{
			{t0.Add(30 * time.Second), taskIDs(1)},
			{delayed.RunAt.Add(-time.Millisecond), nil},
			{delayed.RunAt, taskIDs(2)},
		} {
			if got := ids(s.claim("w1", c.at, 10)); !cmp.Equal(c.want, got, taskOpts) {
				t.Errorf("claim at %v = %v, want %v", c.at, got, c.want)
			}
		}
	})

	t.Run("UnknownWorker", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		s.create(tk)
		s.register("w1")
		_, err := s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{WorkerID: "w9", MaxTasks: 1, Now: t0.Add(time.Second)})
		wantWorkerNotFound(t, err, "w9")
		s.wantStored(tk)
	})

	// Tasks reserved for a worker come before every unreserved task, then
	// the unreserved ones follow in claim order.
	t.Run("ReservedFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		urgent, reserved, normal := newTask(1), newTask(2), newTask(3)
		urgent.Priority, reserved.Priority, normal.Priority = 100, 10, 50
		s.create(urgent, reserved, normal)
		s.assign(reserved.ID, "w1", t0.Add(time.Second))
		got := s.claim("w1", t0.Add(10*time.Second), 10)
		if diff := cmp.Diff(taskIDs(2, 1, 3), ids(got)); diff != "" {
			t.Errorf("claimed (-want +got):\n%s", diff)
		}
	})

	// A reservation holds whatever queue the task is in.
	t.Run("ReservedAnyQueue", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		tk.Queue = "other"
		s.create(tk)
		s.register("w1", "a")
		s.assign(tk.ID, "w1", t0.Add(time.Second))
		got := s.claim("w1", t0.Add(10*time.Second), 1, "a")
		if diff := cmp.Diff(taskIDs(1), ids(got)); diff != "" {
			t.Errorf("claimed (-want +got):\n%s", diff)
		}
	})

	// No other worker ever gets a task reserved for someone else.
	t.Run("ReservedNotForOthers", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		reserved, free := newTask(1), newTask(2)
		reserved.Priority, free.Priority = 100, 10
		s.create(reserved, free)
		s.assign(reserved.ID, "w1", t0.Add(time.Second))
		s.register("w2")
		for i, want := range [][]string{taskIDs(2), nil} {
			if got := ids(s.claim("w2", t0.Add(10*time.Second), 10)); !cmp.Equal(want, got, taskOpts) {
				t.Errorf("w2 claim #%d = %v, want %v", i+1, got, want)
			}
		}
		if got := ids(s.claim("w1", t0.Add(20*time.Second), 10)); !cmp.Equal(taskIDs(1), got) {
			t.Errorf("w1 claimed %v, want its reserved task %v", got, taskIDs(1))
		}
	})

	// Tasks created in the same millisecond with the same priority are
	// taken in id order (ids sort in creation order), whatever order they
	// were stored in: the order task.list gives them too. This holds for
	// reserved tasks and across queues.
	t.Run("SameMillisecondByID", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		same := func(n int, queue string) taskwire.Task {
			tk := newTask(n)
			tk.Queue, tk.CreatedAt, tk.UpdatedAt, tk.RunAt = queue, t0, t0, t0
			return tk
		}
		s.create(same(5, "a"), same(4, "b"), same(3, "a"), same(1, "b"), same(2, "a"))
		s.assign(taskID(5), "w1", t0.Add(time.Second))
		s.assign(taskID(4), "w1", t0.Add(time.Second))
		got := s.claim("w1", t0.Add(10*time.Second), 10, "a", "b")
		if diff := cmp.Diff(taskIDs(4, 5, 1, 2, 3), ids(got)); diff != "" {
			t.Errorf("claim order (-want +got):\n%s", diff)
		}
	})

	// A task back in the queue keeps its place: it is still the oldest.
	t.Run("RequeuedKeepsItsPlace", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1), newTask(2))
		s.reclaim(taskID(1), taskwire.DefaultQueue, "w1", t0.Add(10*time.Second))
		s.unassign(taskID(1), t0.Add(20*time.Second))
		s.register("w2")
		if got := ids(s.claim("w2", t0.Add(30*time.Second), 1)); !cmp.Equal(taskIDs(1), got) {
			t.Errorf("claimed %v, want %v", got, taskIDs(1))
		}
	})

	// Nothing ready is an empty answer, not an error.
	t.Run("NothingReady", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			setup func(s *bundle)
		}{
			{"EmptyStore", func(s *bundle) {}},
			// The only task is held by another worker.
			{"InProgress", func(s *bundle) { s.claimed(newTask(1), "w2", t0.Add(time.Second)) }},
			// The only task is final.
			{"Final", func(s *bundle) {
				s.claimed(newTask(1), "w2", t0.Add(time.Second))
				s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w2", Now: t0.Add(2 * time.Second)})
			}},
			// The only task is in a queue the worker does not take from.
			{"OtherQueue", func(s *bundle) {
				tk := newTask(1)
				tk.Queue = "b"
				s.create(tk)
			}},
			// The only task is not due yet.
			{"Delayed", func(s *bundle) {
				tk := newTask(1)
				tk.RunAt = t0.Add(time.Hour)
				s.create(tk)
			}},
			// The only task is reserved for another worker.
			{"ReservedForOther", func(s *bundle) {
				s.create(newTask(1))
				s.assign(taskID(1), "w2", t0.Add(time.Second))
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				s.register("w1")
				got, err := s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 10, Now: t0.Add(10 * time.Second)})
				if err != nil || len(got) != 0 {
					t.Errorf("ClaimTasks = %v, %v; want none, no error", ids(got), err)
				}
			})
		}
	})
}

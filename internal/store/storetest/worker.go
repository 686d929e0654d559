package storetest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testWorker(t *testing.T, newStore newStoreFunc) {
	// ListWorkers shows every registered worker, online, as it registered,
	// ordered by id.
	t.Run("Register", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		ps := []store.RegisterWorkerParams{
			{ID: "w2", Now: t0.Add(time.Second)},
			{ID: "w1", Roles: []string{"worker", "gpu"}, Queues: []string{"b", "a"},
				Metadata: json.RawMessage(`{"host":"node-7","slots":4}`), Now: t0.Add(2 * time.Second)},
		}
		for _, p := range ps {
			if err := s.st.RegisterWorker(s.ctx, p); err != nil {
				t.Fatalf("RegisterWorker(%s): %v", p.ID, err)
			}
		}
		want := []taskwire.Worker{
			{ID: "w1", Status: taskwire.WorkerOnline, Roles: ps[1].Roles, Queues: ps[1].Queues, Metadata: ps[1].Metadata,
				RegisteredAt: ps[1].Now, LastSeen: ps[1].Now},
			{ID: "w2", Status: taskwire.WorkerOnline, RegisteredAt: ps[0].Now, LastSeen: ps[0].Now},
		}
		s.wantWorkers(want)
	})

	// Registering again refreshes the worker: its roles, queues and
	// metadata are the new ones, it was seen now, and it claims from its
	// new queues.
	t.Run("Refresh", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		tk.Queue = "new"
		s.create(tk)
		s.register("w1", "old")
		p := store.RegisterWorkerParams{ID: "w1", Roles: []string{"admin"}, Queues: []string{"new"},
			Metadata: json.RawMessage(`{"v":2}`), Now: t0.Add(5 * time.Second)}
		if err := s.st.RegisterWorker(s.ctx, p); err != nil {
			t.Fatalf("RegisterWorker again: %v", err)
		}
		got := s.workers()
		want := []taskwire.Worker{{ID: "w1", Status: taskwire.WorkerOnline, Roles: p.Roles, Queues: p.Queues,
			Metadata: p.Metadata, LastSeen: p.Now}}
		// Whether a refresh moves RegisteredAt is left open.
		for i := range got {
			got[i].RegisteredAt = time.Time{}
		}
		if diff := cmp.Diff(want, got, taskOpts); diff != "" {
			t.Errorf("ListWorkers (-want +got):\n%s", diff)
		}
		if claimed := ids(s.claim("w1", t0.Add(10*time.Second), 1)); !cmp.Equal(taskIDs(1), claimed) {
			t.Errorf("w1 claimed %v from its new queues, want %v", claimed, taskIDs(1))
		}
	})

	// A worker's Tasks are the ids of its in_progress tasks: not its
	// reservations, not what it finished.
	t.Run("Tasks", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		for n := 1; n <= 5; n++ {
			s.create(newTask(n))
		}
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 2)            // 1, 2
		s.claim("w2", t0.Add(time.Second), 2)            // 3, 4
		s.assign(taskID(5), "w1", t0.Add(2*time.Second)) // reserved
		s.complete(store.CompleteTaskParams{ID: taskID(4), WorkerID: "w2", Now: t0.Add(3 * time.Second)})
		got := map[string][]string{}
		for _, w := range s.workers() {
			got[w.ID] = slices.Sorted(slices.Values(w.Tasks))
		}
		want := map[string][]string{"w1": taskIDs(1, 2), "w2": taskIDs(3)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("in-progress tasks by worker (-want +got):\n%s", diff)
		}
	})

	// A worker's Tasks are listed oldest first (CreatedAt, then id, as
	// task.list orders them), whatever order they were stored or claimed in.
	t.Run("TasksOldestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		at := newTask(5).CreatedAt
		var tasks []taskwire.Task
		for _, n := range []int{3, 4, 2, 1} {
			tk := newTask(n)
			if n > 1 {
				tk.CreatedAt, tk.UpdatedAt, tk.RunAt = at, at, at
			}
			tk.Priority = map[int]int{1: 0, 2: 10, 3: 50, 4: 90}[n]
			tasks = append(tasks, tk)
		}
		s.create(tasks...)
		s.register("w1")
		if got := ids(s.claim("w1", t0.Add(time.Second), 10)); !cmp.Equal(taskIDs(4, 3, 2, 1), got) {
			t.Fatalf("claimed %v, want %v", got, taskIDs(4, 3, 2, 1))
		}
		for _, w := range s.workers() {
			if diff := cmp.Diff(taskIDs(1, 2, 3, 4), w.Tasks); diff != "" {
				t.Errorf("tasks of %s (-want +got):\n%s", w.ID, diff)
			}
		}
	})

	// A heartbeat renews the worker and the leases of all its in_progress
	// tasks, each by its own LeaseMs; other workers' leases stay.
	t.Run("Heartbeat", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		short, long, others := newTask(1), newTask(2), newTask(3)
		short.LeaseMs, long.LeaseMs = 60_000, 120_000
		s.create(short, long, others)
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 2)
		othersBefore := s.claim("w2", t0.Add(time.Second), 1)[0]

		now := t0.Add(30 * time.Second)
		alive, err := s.st.HeartbeatWorker(s.ctx, store.HeartbeatWorkerParams{ID: "w1", Now: now})
		if err != nil || !alive {
			t.Fatalf("HeartbeatWorker = %v, %v; want alive", alive, err)
		}
		for _, tk := range []taskwire.Task{short, long} {
			got := s.get(tk.ID)
			if want := now.Add(time.Duration(tk.LeaseMs) * time.Millisecond); !got.LeaseExpiresAt.Equal(want) {
				t.Errorf("task %s lease expires at %v, want %v", tk.ID, got.LeaseExpiresAt, want)
			}
			if got.Status != taskwire.StatusInProgress || got.AssignedTo != "w1" || got.Attempt != 1 {
				t.Errorf("task %s after heartbeat: %s, assigned to %q, attempt %d; want in_progress, w1, 1",
					tk.ID, got.Status, got.AssignedTo, got.Attempt)
			}
		}
		if got := s.get(others.ID); !got.LeaseExpiresAt.Equal(othersBefore.LeaseExpiresAt) {
			t.Errorf("w2's task lease = %v, want untouched %v", got.LeaseExpiresAt, othersBefore.LeaseExpiresAt)
		}
		for _, w := range s.workers() {
			want := t0.Add(time.Second) // its claim
			if w.ID == "w1" {
				want = now
			}
			if !w.LastSeen.Equal(want) || w.Status != taskwire.WorkerOnline {
				t.Errorf("worker %s: %s, last seen %v; want online, %v", w.ID, w.Status, w.LastSeen, want)
			}
		}
	})

	t.Run("HeartbeatUnknown", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.register("w1")
		alive, err := s.st.HeartbeatWorker(s.ctx, store.HeartbeatWorkerParams{ID: "w9", Now: t0.Add(time.Second)})
		wantWorkerNotFound(t, err, "w9")
		if alive {
			t.Errorf("unknown worker reported alive")
		}
	})

	// Unregistering gives the worker's in_progress tasks back at once (their
	// attempt kept), clears its reservations, leaves what it finished and
	// other workers' tasks alone, and the worker is gone.
	t.Run("Unregister", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		for n := 1; n <= 5; n++ {
			s.create(newTask(n))
		}
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 3) // 1, 2, 3
		s.complete(store.CompleteTaskParams{ID: taskID(3), WorkerID: "w1", Now: t0.Add(2 * time.Second)})
		s.claim("w2", t0.Add(3*time.Second), 1)          // 4
		s.assign(taskID(5), "w1", t0.Add(4*time.Second)) // reserved
		before := map[int]*taskwire.Task{}
		for n := 1; n <= 5; n++ {
			before[n] = s.get(taskID(n))
		}

		now := t0.Add(time.Minute)
		requeued, err := s.st.UnregisterWorker(s.ctx, store.UnregisterWorkerParams{ID: "w1", Now: now})
		if err != nil || requeued != 2 {
			t.Fatalf("UnregisterWorker = %d, %v; want 2 requeued", requeued, err)
		}
		for _, n := range []int{1, 2, 5} {
			want := *before[n]
			want.Status, want.AssignedTo, want.LeaseExpiresAt, want.UpdatedAt = taskwire.StatusPending, "", time.Time{}, now
			s.wantStored(want)
		}
		s.unchanged(before[3])
		s.unchanged(before[4])

		s.wantWorkers([]taskwire.Worker{{ID: "w2", Status: taskwire.WorkerOnline, RegisteredAt: t0,
			LastSeen: t0.Add(3 * time.Second), Tasks: taskIDs(4)}})
		_, err = s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 1, Now: now})
		wantWorkerNotFound(t, err, "w1")
		_, err = s.st.HeartbeatWorker(s.ctx, store.HeartbeatWorkerParams{ID: "w1", Now: now})
		wantWorkerNotFound(t, err, "w1")
		if got := ids(s.claim("w2", now, 10)); !cmp.Equal(taskIDs(1, 2, 5), got) {
			t.Errorf("w2 claimed %v, want the requeued and unreserved tasks %v", got, taskIDs(1, 2, 5))
		}
	})

	// A task on its last attempt (Attempt >= MaxAttempts) is not given
	// back but fails, as when its lease expires, with error "worker
	// unregistered after N attempts", keeping its assignment as every
	// final task does: no worker claims it once more than MaxAttempts
	// allows. It is not counted as requeued.
	t.Run("UnregisterLastAttempt", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		last, again := newTask(1), newTask(2)
		last.MaxAttempts, again.MaxAttempts = 1, 2
		s.create(last, again)
		s.register("w1")
		s.register("w2")
		s.claim("w1", t0.Add(time.Second), 2)
		before := s.getAll(2)

		now := t0.Add(time.Minute)
		requeued, err := s.st.UnregisterWorker(s.ctx, store.UnregisterWorkerParams{ID: "w1", Now: now})
		if err != nil || requeued != 1 {
			t.Fatalf("UnregisterWorker = %d, %v; want 1 requeued", requeued, err)
		}
		s.wantStored(lastAttemptFailed(*before[1], "worker unregistered", now))
		back := *before[2]
		back.Status, back.AssignedTo, back.LeaseExpiresAt, back.UpdatedAt = taskwire.StatusPending, "", time.Time{}, now
		s.wantStored(back)
		if got := ids(s.claim("w2", now, 10)); !cmp.Equal(taskIDs(2), got) {
			t.Errorf("w2 claimed %v, want only the task with attempts left %v", got, taskIDs(2))
		}
	})

	t.Run("UnregisterUnknown", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.register("w1")
		_, err := s.st.UnregisterWorker(s.ctx, store.UnregisterWorkerParams{ID: "w9", Now: t0.Add(time.Second)})
		wantWorkerNotFound(t, err, "w9")
		s.wantWorkers([]taskwire.Worker{{ID: "w1", Status: taskwire.WorkerOnline, RegisteredAt: t0, LastSeen: t0}})
	})
}

// workers returns ListWorkers.
func (s *bundle) workers() []taskwire.Worker {
	s.t.Helper()
	ws, err := s.st.ListWorkers(s.ctx)
	if err != nil {
		s.t.Fatalf("ListWorkers: %v", err)
	}
	return ws
}

// wantWorkers checks ListWorkers against want.
func (s *bundle) wantWorkers(want []taskwire.Worker) {
	s.t.Helper()
	if diff := cmp.Diff(want, s.workers(), taskOpts); diff != "" {
		s.t.Errorf("ListWorkers (-want +got):\n%s", diff)
	}
}

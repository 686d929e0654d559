package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testAssign(t *testing.T, newStore newStoreFunc) {
	// AssignTask reserves a pending task: it stays pending, assigned to the
	// worker, which claims it next.
	t.Run("Reserve", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		want := newTask(1)
		s.create(want)
		now := t0.Add(5 * time.Second)
		want.AssignedTo, want.UpdatedAt = "w1", now
		wantReturned(t, "AssignTask", want, s.assign(want.ID, "w1", now))
		s.wantStored(want)
		if got := ids(s.claim("w1", t0.Add(10*time.Second), 1)); !cmp.Equal(taskIDs(1), got) {
			t.Errorf("w1 claimed %v, want %v", got, taskIDs(1))
		}
	})

	// Assigning again to the same worker changes nothing, not even UpdatedAt.
	t.Run("SameWorkerAgain", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		first := s.assign(taskID(1), "w1", t0.Add(5*time.Second))
		stored := s.get(taskID(1))
		wantReturned(t, "AssignTask (again)", *first, s.assign(taskID(1), "w1", t0.Add(9*time.Second)))
		s.unchanged(stored)
	})

	t.Run("UnknownWorker", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		s.create(tk)
		s.register("w1")
		_, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: tk.ID, WorkerID: "w9", Now: t0.Add(time.Second)})
		wantWorkerNotFound(t, err, "w9")
		s.wantStored(tk)
	})

	// An offline worker cannot take a reservation, as it cannot claim:
	// nothing would release it, since its reservations were released when
	// it went offline.
	t.Run("OfflineWorker", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		s.create(tk)
		s.register("w1")
		s.wantSweep(t0.Add(timeout), timeout, store.SweepResult{WorkersOffline: 1})
		_, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: tk.ID, WorkerID: "w1", Now: t0.Add(timeout + time.Second)})
		wantWorkerNotFound(t, err, "w1")
		s.wantStored(tk)
	})

	t.Run("UnknownTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		s.register("w1")
		_, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: taskID(2), WorkerID: "w1", Now: t0.Add(time.Second)})
		wantTaskNotFound(t, err, taskID(2))
	})

	// Only a pending task that is not reserved for someone else can be
	// reserved.
	t.Run("Conflicts", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name         string
			setup        func(s *bundle)
			worker       string
			wantStatus   taskwire.Status
			wantAssigned string
		}{
			{"ReservedForOther", reserved, "w2", taskwire.StatusPending, "w1"},
			// Held in progress, even by the same worker.
			{"InProgress", inProgress, "w1", taskwire.StatusInProgress, "w1"},
			{"Completed", completed, "w2", taskwire.StatusCompleted, "w1"},
			{"Failed", failed, "w1", taskwire.StatusFailed, "w1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				s.register(tt.worker)
				before := s.get(taskID(1))
				_, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: taskID(1), WorkerID: tt.worker, Now: t0.Add(time.Minute)})
				wantConflict(t, err, taskID(1), tt.wantStatus, tt.wantAssigned)
				s.unchanged(before)
			})
		}
	})

	// UnassignTask clears a reservation or takes a task back from its
	// worker, and reports whom it was assigned to.
	t.Run("Unassign", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name         string
			setup        func(s *bundle)
			wantPrevious string
		}{
			// The reservation goes; the task is anyone's again.
			{"Reserved", reserved, "w1"},
			// Back to pending, its attempt kept, its lease gone.
			{"InProgress", inProgress, "w1"},
			// Nothing to clear.
			{"Unassigned", func(s *bundle) { s.create(newTask(1)) }, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				want := *s.get(taskID(1))
				now := t0.Add(time.Minute)
				want.Status, want.AssignedTo, want.LeaseExpiresAt = taskwire.StatusPending, "", time.Time{}
				want.UpdatedAt = now
				prev, got, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: taskID(1), Now: now})
				if err != nil || got == nil {
					t.Fatalf("UnassignTask = %v, %v; want the task", got, err)
				}
				if prev != tt.wantPrevious {
					t.Errorf("previous assignment = %q, want %q", prev, tt.wantPrevious)
				}
				if tt.wantPrevious == "" {
					// Whether clearing nothing touches UpdatedAt is left open.
					want.UpdatedAt = got.UpdatedAt
				}
				wantReturned(t, "UnassignTask", want, got)
				s.wantStored(want)
				s.register("w2")
				if got := ids(s.claim("w2", now.Add(time.Second), 1)); !cmp.Equal(taskIDs(1), got) {
					t.Errorf("w2 claimed %v, want %v", got, taskIDs(1))
				}
			})
		}
	})

	// A final task keeps its assignment: it records who did the work.
	t.Run("UnassignFinal", func(t *testing.T) {
		t.Parallel()
		for name, setupFinal := range map[string]func(*bundle){"Completed": completed, "Failed": failed} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				setupFinal(s)
				before := s.get(taskID(1))
				_, _, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: taskID(1), Now: t0.Add(time.Minute)})
				wantConflict(t, err, taskID(1), before.Status, "w1")
				s.unchanged(before)
			})
		}
	})

	t.Run("UnassignUnknownTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		_, _, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: taskID(2), Now: t0.Add(time.Second)})
		wantTaskNotFound(t, err, taskID(2))
	})
}

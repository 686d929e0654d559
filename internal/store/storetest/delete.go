package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testDelete(t *testing.T, newStore newStoreFunc) {
	// A deleted task is gone for every operation, whatever state it was in;
	// the other tasks stay.
	t.Run("Gone", func(t *testing.T) {
		t.Parallel()
		id := taskID(1)
		later := t0.Add(time.Hour)
		ops := []struct {
			name string
			call func(s *bundle) error
		}{
			{"GetTask", func(s *bundle) error { _, err := s.st.GetTask(s.ctx, id); return err }},
			{"OpenResult", func(s *bundle) error {
				r, _, err := s.st.OpenResult(s.ctx, id)
				if err == nil {
					r.Close()
				}
				return err
			}},
			// The worker that held it completes it late.
			{"CompleteTask", func(s *bundle) error {
				_, _, err := s.st.CompleteTask(s.ctx, store.CompleteTaskParams{ID: id, WorkerID: "w1", Result: json.RawMessage(`1`), Now: later})
				return err
			}},
			{"UpdateTask", func(s *bundle) error {
				_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: id, Updates: taskwire.TaskUpdates{Text: ptr("x")}, Now: later})
				return err
			}},
			{"AssignTask", func(s *bundle) error {
				_, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: id, WorkerID: "w1", Now: later})
				return err
			}},
			{"UnassignTask", func(s *bundle) error {
				_, _, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: id, Now: later})
				return err
			}},
			{"DeleteTask", func(s *bundle) error { return s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: id, Now: later}) }},
		}
		states := []struct {
			name  string
			setup func(s *bundle)
		}{
			{"Pending", func(s *bundle) { s.create(newTask(1)) }},
			{"Reserved", reserved},
			{"InProgress", inProgress},
			{"Completed", completed},
			{"Failed", failed},
		}
		for _, state := range states {
			t.Run(state.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				state.setup(s)
				other := newTask(2)
				other.Queue = "other"
				s.create(other)
				s.register("w1")
				if err := s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: id, Now: t0.Add(time.Minute)}); err != nil {
					t.Fatalf("DeleteTask: %v", err)
				}
				for _, op := range ops {
					wantTaskNotFound(t, op.call(s), id)
				}
				if got, total := s.list(store.ListTasksParams{Limit: 10}); total != 1 || !cmp.Equal(taskIDs(2), got) {
					t.Errorf("ListTasks = %v, total %d; want [%s], total 1", got, total, other.ID)
				}
				workers, err := s.st.ListWorkers(s.ctx)
				if err != nil {
					t.Fatalf("ListWorkers: %v", err)
				}
				for _, w := range workers {
					if len(w.Tasks) > 0 {
						t.Errorf("worker %s still lists tasks %v", w.ID, w.Tasks)
					}
				}
				if got := ids(s.claim("w1", t0.Add(2*time.Minute), 10, taskwire.DefaultQueue, "other")); !cmp.Equal(taskIDs(2), got) {
					t.Errorf("w1 claimed %v after the delete, want only %v", got, taskIDs(2))
				}
			})
		}
	})

	t.Run("UnknownTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		err := s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: taskID(2), Now: t0.Add(time.Second)})
		wantTaskNotFound(t, err, taskID(2))
		s.wantStored(newTask(1))
	})

	// The idempotency key of a deleted task goes with it: the next create
	// with that key makes a new task.
	t.Run("IdempotencyKeyFreed", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		createKeyed(t, s, newTask(1), "k", time.Hour, true)
		if err := s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: taskID(1), Now: t0.Add(time.Second)}); err != nil {
			t.Fatalf("DeleteTask: %v", err)
		}
		second := newTask(2)
		second.CreatedAt = t0.Add(2 * time.Second)
		got := createKeyed(t, s, second, "k", time.Hour, true)
		wantReturned(t, "CreateTask", second, got)
	})
}

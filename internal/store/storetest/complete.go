package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testComplete(t *testing.T, newStore newStoreFunc) {
	// A completion is final: the status, the outcome, when it ended and how
	// long the task took since its creation. The result is kept byte for byte.
	t.Run("Outcomes", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			failed bool
			result string
			errMsg string
		}{
			{"Object", false, `{"documentsReviewed":15,"optimizations":["index on user_id"],"ratio":0.25}`, ""},
			{"Array", false, `[1,"two",{"three":3},null]`, ""},
			{"String", false, `"done ✓"`, ""},
			{"Number", false, `1.0000000000000002`, ""},
			{"True", false, `true`, ""},
			// The JSON value null is a result like any other.
			{"Null", false, `null`, ""},
			{"Failed", true, "", "boom: exit status 2"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				claimed := s.claimed(newTask(1), "w1", t0.Add(10*time.Second))
				now := t0.Add(12*time.Second + 500*time.Millisecond)
				p := store.CompleteTaskParams{ID: claimed.ID, WorkerID: "w1", Failed: tt.failed, Error: tt.errMsg, Now: now}
				want := *claimed
				want.Status = taskwire.StatusCompleted
				if tt.failed {
					want.Status = taskwire.StatusFailed
				} else {
					p.Result = json.RawMessage(tt.result)
					want.Result, want.ResultSize = p.Result, int64(len(tt.result))
				}
				want.Error = tt.errMsg
				want.LeaseExpiresAt = time.Time{}
				want.CompletedAt, want.UpdatedAt = now, now
				want.DurationMs = now.Sub(claimed.CreatedAt).Milliseconds() // 12499

				wantReturned(t, "CompleteTask", want, s.complete(p))
				s.wantStored(want)
				if !tt.failed {
					s.wantResult(claimed.ID, []byte(tt.result))
				}
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.claimed(newTask(1), "w1", t0.Add(time.Second))
		_, _, err := s.st.CompleteTask(s.ctx, store.CompleteTaskParams{ID: taskID(2), WorkerID: "w1", Now: t0.Add(2 * time.Second)})
		wantTaskNotFound(t, err, taskID(2))
	})

	// A completion the task's state does not allow is a conflict naming
	// that state, and changes nothing. Only another worker's hold or
	// reservation is a conflict of OtherWorker: a final task or a stale
	// attempt is in the way whoever completes.
	t.Run("Conflicts", func(t *testing.T) {
		t.Parallel()
		// requeuedTo gives the task of inProgress (w1's attempt 1) to
		// worker as attempt 2.
		requeuedTo := func(worker string) func(s *bundle) {
			return func(s *bundle) {
				inProgress(s)
				s.unassign(taskID(1), t0.Add(2*time.Second))
				s.reclaim(taskID(1), taskwire.DefaultQueue, worker, t0.Add(3*time.Second))
			}
		}
		tests := []struct {
			name            string
			setup           func(s *bundle)
			p               store.CompleteTaskParams // ID and Now are filled in
			wantStatus      taskwire.Status
			wantAssigned    string
			wantOtherWorker bool
		}{
			// Nobody holds the task: completion needs an assignment.
			{"Unassigned", func(s *bundle) { s.create(newTask(1)) },
				store.CompleteTaskParams{WorkerID: "w1"}, taskwire.StatusPending, "", false},
			// Not even an admin completes a task nobody holds.
			{"UnassignedAdmin", func(s *bundle) { s.create(newTask(1)) },
				store.CompleteTaskParams{}, taskwire.StatusPending, "", false},
			// Another worker holds the task.
			{"OtherWorker", inProgress,
				store.CompleteTaskParams{WorkerID: "w2"}, taskwire.StatusInProgress, "w1", true},
			// The task is reserved for another worker.
			{"ReservedForOther", reserved,
				store.CompleteTaskParams{WorkerID: "w2"}, taskwire.StatusPending, "w1", true},
			// Completed already: a late failure does not replace it.
			{"Completed", completed,
				store.CompleteTaskParams{WorkerID: "w1", Failed: true, Error: "late"}, taskwire.StatusCompleted, "w1", false},
			// Completed already by another worker.
			{"CompletedByOther", completed,
				store.CompleteTaskParams{WorkerID: "w2"}, taskwire.StatusCompleted, "w1", false},
			// Failed already: not even an admin completes it.
			{"FailedAdmin", failed,
				store.CompleteTaskParams{Result: json.RawMessage(`{"ok":true}`)}, taskwire.StatusFailed, "w1", false},
			// A zombie of attempt 1, after the task was requeued and claimed again.
			{"StaleAttempt", requeuedTo("w1"),
				store.CompleteTaskParams{WorkerID: "w1", Attempt: ptr(1)}, taskwire.StatusInProgress, "w1", false},
			// The same zombie when another worker claimed the task again.
			{"StaleAttemptOtherWorker", requeuedTo("w2"),
				store.CompleteTaskParams{WorkerID: "w1", Attempt: ptr(1)}, taskwire.StatusInProgress, "w2", false},
			// An attempt the task has not reached.
			{"FutureAttempt", inProgress,
				store.CompleteTaskParams{WorkerID: "w1", Attempt: ptr(2)}, taskwire.StatusInProgress, "w1", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				before := s.get(taskID(1))
				p := tt.p
				p.ID, p.Now = taskID(1), t0.Add(time.Minute)
				_, _, err := s.st.CompleteTask(s.ctx, p)
				wantConflict(t, err, taskID(1), tt.wantStatus, tt.wantAssigned)
				wantOtherWorker(t, err, tt.wantOtherWorker)
				s.unchanged(before)
			})
		}
	})

	// A task reserved with AssignTask may be completed before it is claimed,
	// by its worker or an admin.
	t.Run("ReservedTask", func(t *testing.T) {
		t.Parallel()
		for _, worker := range []string{"w1", ""} {
			name := "Worker"
			if worker == "" {
				name = "Admin"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				s.create(newTask(1))
				want := *s.assign(taskID(1), "w1", t0.Add(5*time.Second))
				now := t0.Add(8 * time.Second)
				want.Status = taskwire.StatusCompleted
				want.Result, want.ResultSize = json.RawMessage(`"ok"`), 4
				want.CompletedAt, want.UpdatedAt = now, now
				want.DurationMs = now.Sub(want.CreatedAt).Milliseconds()
				got := s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: worker, Result: want.Result, Now: now})
				wantReturned(t, "CompleteTask", want, got)
				s.wantStored(want)
			})
		}
	})

	// An admin (no WorkerID) completes a task whoever holds it; the task
	// stays assigned to that worker.
	t.Run("Admin", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		want := *s.claimed(newTask(1), "w1", t0.Add(time.Second))
		now := t0.Add(3 * time.Second)
		want.Status = taskwire.StatusFailed
		want.Error = "cancelled by operator"
		want.LeaseExpiresAt = time.Time{}
		want.CompletedAt, want.UpdatedAt = now, now
		want.DurationMs = now.Sub(want.CreatedAt).Milliseconds()
		got := s.complete(store.CompleteTaskParams{ID: taskID(1), Failed: true, Error: want.Error, Now: now})
		wantReturned(t, "CompleteTask", want, got)
		s.wantStored(want)
	})

	// A worker that lost the response retries: the same worker with the
	// same outcome gets the task as the first call left it, told that this
	// call finalized nothing (so that it is not counted twice).
	t.Run("RetrySameOutcome", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			p    store.CompleteTaskParams // ID and Now are filled in
		}{
			{"Result", store.CompleteTaskParams{WorkerID: "w1", Result: json.RawMessage(`{"n":1}`)}},
			{"Error", store.CompleteTaskParams{WorkerID: "w1", Failed: true, Error: "boom"}},
			// The SDK sends the attempt with every call.
			{"WithAttempt", store.CompleteTaskParams{WorkerID: "w1", Attempt: ptr(1), Result: json.RawMessage(`[1,2]`)}},
			// A completion without any result.
			{"NoResult", store.CompleteTaskParams{WorkerID: "w1"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				s.claimed(newTask(1), "w1", t0.Add(time.Second))
				p := tt.p
				p.ID, p.Now = taskID(1), t0.Add(20*time.Second)
				first := s.complete(p)
				stored := s.get(taskID(1))
				p.Now = t0.Add(25 * time.Second)
				retry, finalized, err := s.st.CompleteTask(s.ctx, p)
				if err != nil || finalized {
					t.Fatalf("retry = finalized %v, %v; want not finalized, no error", finalized, err)
				}
				wantReturned(t, "CompleteTask (retry)", *first, retry)
				if !retry.CompletedAt.Equal(t0.Add(20 * time.Second)) {
					t.Errorf("retry CompletedAt = %v, want the first call's %v", retry.CompletedAt, t0.Add(20*time.Second))
				}
				s.unchanged(stored)
			})
		}
	})

	// A second completion with another outcome, or by another worker, is a
	// conflict and the first outcome stays.
	t.Run("RetryOtherOutcome", func(t *testing.T) {
		t.Parallel()
		result := store.CompleteTaskParams{WorkerID: "w1", Result: json.RawMessage(`{"n":1}`)}
		failure := store.CompleteTaskParams{WorkerID: "w1", Failed: true, Error: "boom"}
		tests := []struct {
			name  string
			first store.CompleteTaskParams
			retry store.CompleteTaskParams
		}{
			{"OtherError", failure, store.CompleteTaskParams{WorkerID: "w1", Failed: true, Error: "bang"}},
			{"FailedThenCompleted", failure, result},
			{"CompletedThenFailed", result, failure},
			{"OtherResult", result, store.CompleteTaskParams{WorkerID: "w1", Result: json.RawMessage(`{"n":2}`)}},
			// A completion without a result is another outcome than one with it.
			{"ResultThenNone", result, store.CompleteTaskParams{WorkerID: "w1"}},
			// The same outcome from a worker that does not hold the task.
			{"OtherWorker", result, store.CompleteTaskParams{WorkerID: "w2", Result: json.RawMessage(`{"n":1}`)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				s.claimed(newTask(1), "w1", t0.Add(time.Second))
				p := tt.first
				p.ID, p.Now = taskID(1), t0.Add(20*time.Second)
				first := s.complete(p)
				stored := s.get(taskID(1))
				p = tt.retry
				p.ID, p.Now = taskID(1), t0.Add(25*time.Second)
				_, _, err := s.st.CompleteTask(s.ctx, p)
				wantConflict(t, err, taskID(1), first.Status, "w1")
				s.unchanged(stored)
			})
		}
	})
}

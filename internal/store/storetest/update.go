package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testUpdate(t *testing.T, newStore newStoreFunc) {
	// Only the given fields change; metadata is merged key by key.
	t.Run("Fields", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			metadata string // the task's metadata before the update
			updates  taskwire.TaskUpdates
			want     func(tk *taskwire.Task)
		}{
			{"Text", `{"a":1}`, taskwire.TaskUpdates{Text: ptr("new text")},
				func(tk *taskwire.Task) { tk.Text = "new text" }},
			{"Priority", `{"a":1}`, taskwire.TaskUpdates{Priority: ptr(0)},
				func(tk *taskwire.Task) { tk.Priority = 0 }},
			// a is kept, b removed by null, c replaced as a whole, d added.
			{"MetadataMerge", `{"a":1,"b":2,"c":{"x":1}}`,
				taskwire.TaskUpdates{Metadata: json.RawMessage(`{"b":null,"c":{"y":2},"d":"new"}`)},
				func(tk *taskwire.Task) { tk.Metadata = json.RawMessage(`{"a":1,"c":{"y":2},"d":"new"}`) }},
			// Keys added to a task without metadata.
			{"MetadataOntoNone", "", taskwire.TaskUpdates{Metadata: json.RawMessage(`{"a":[1]}`)},
				func(tk *taskwire.Task) { tk.Metadata = json.RawMessage(`{"a":[1]}`) }},
			// Removing every key leaves no metadata (null).
			{"MetadataEmptied", `{"a":1,"b":2}`, taskwire.TaskUpdates{Metadata: json.RawMessage(`{"a":null,"b":null}`)},
				func(tk *taskwire.Task) { tk.Metadata = nil }},
			// A null patch changes no key.
			{"MetadataNull", `{"a":1}`, taskwire.TaskUpdates{Metadata: json.RawMessage(`null`), Text: ptr("x")},
				func(tk *taskwire.Task) { tk.Text = "x" }},
			{"All", `{"a":1}`, taskwire.TaskUpdates{Text: ptr("t"), Priority: ptr(99), Metadata: json.RawMessage(`{"b":2}`)},
				func(tk *taskwire.Task) {
					tk.Text, tk.Priority, tk.Metadata = "t", 99, json.RawMessage(`{"a":1,"b":2}`)
				}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tk := newTask(1)
				if tt.metadata != "" {
					tk.Metadata = json.RawMessage(tt.metadata)
				}
				s.create(tk)
				now := t0.Add(5 * time.Second)
				want := tk
				tt.want(&want)
				want.UpdatedAt = now
				got := s.update(store.UpdateTaskParams{ID: tk.ID, Updates: tt.updates, Now: now})
				wantReturned(t, "UpdateTask", want, got)
				s.wantStored(want)
			})
		}
	})

	// The limit holds for the merged object: a patch that would take it over
	// 64 KiB changes nothing, one that makes room first is fine.
	t.Run("MetadataTooLarge", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		tk := newTask(1)
		tk.Metadata = json.RawMessage(`{"a":"` + strings.Repeat("x", 40<<10) + `"}`)
		s.create(tk)
		big := strings.Repeat("y", 30<<10)
		_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: tk.ID, Now: t0.Add(time.Second),
			Updates: taskwire.TaskUpdates{Text: ptr("changed"), Metadata: json.RawMessage(`{"b":"` + big + `"}`)}})
		if !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("UpdateTask over the limit: err = %v, want store.ErrTooLarge", err)
		}
		s.wantStored(tk)

		got := s.update(store.UpdateTaskParams{ID: tk.ID, Now: t0.Add(2 * time.Second),
			Updates: taskwire.TaskUpdates{Metadata: json.RawMessage(`{"a":null,"b":"` + big + `"}`)}})
		if diff := cmp.Diff(map[string]any{"b": big}, jsonValue(got.Metadata)); diff != "" {
			t.Errorf("metadata after making room (-want +got):\n%s", diff)
		}
	})

	// The limit holds for the merged object's compact encoding: a character
	// that an encoder may escape (<, > and & as \u003c, \u003e and \u0026)
	// counts as itself, and the merged object is kept without such escapes.
	t.Run("MetadataMeasuredCompact", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			metadata string // the task's metadata before the update
			patch    string
			want     string // the merged object, compact
		}{
			// 15,000 characters that would be 90 KB escaped.
			{"Unescaped", `{"a":"` + strings.Repeat("<&>", 5000) + `"}`, `{"b":1}`,
				`{"a":"` + strings.Repeat("<&>", 5000) + `","b":1}`},
			// Stored escaped (60 KB), as some encoders send it: merged with
			// 10 KB more it is 70 KB as stored but 20 KB compact.
			{"StoredEscaped", `{"a":"` + strings.Repeat(`\u0026`, 10000) + `"}`,
				`{"b":"` + strings.Repeat("y", 10000) + `"}`,
				`{"a":"` + strings.Repeat("&", 10000) + `","b":"` + strings.Repeat("y", 10000) + `"}`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tk := newTask(1)
				tk.Metadata = json.RawMessage(tt.metadata)
				s.create(tk)
				got := s.update(store.UpdateTaskParams{ID: tk.ID, Now: t0.Add(time.Second),
					Updates: taskwire.TaskUpdates{Metadata: json.RawMessage(tt.patch)}})
				for _, m := range []json.RawMessage{got.Metadata, s.get(tk.ID).Metadata} {
					if diff := cmp.Diff(jsonValue(json.RawMessage(tt.want)), jsonValue(m)); diff != "" {
						t.Errorf("merged metadata (-want +got):\n%s", diff)
					}
					if len(m) > len(tt.want) {
						t.Errorf("merged metadata is %d bytes, want at most %d (compact): %.100s",
							len(m), len(tt.want), m)
					}
				}
			})
		}
	})

	// A priority change moves the task in claim order.
	t.Run("PriorityMovesTask", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1), newTask(2), newTask(3))
		s.update(store.UpdateTaskParams{ID: taskID(3), Updates: taskwire.TaskUpdates{Priority: ptr(90)}, Now: t0.Add(time.Second)})
		s.update(store.UpdateTaskParams{ID: taskID(1), Updates: taskwire.TaskUpdates{Priority: ptr(10)}, Now: t0.Add(time.Second)})
		s.register("w1")
		var got []string
		for range 3 {
			got = append(got, ids(s.claim("w1", t0.Add(10*time.Second), 1))...)
		}
		if diff := cmp.Diff(taskIDs(3, 2, 1), got); diff != "" {
			t.Errorf("claim order (-want +got):\n%s", diff)
		}
	})

	// The worker holding a task may update it, and doing so renews its
	// lease from the update.
	t.Run("WorkerRenewsLease", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name    string
			updates taskwire.TaskUpdates
			want    func(tk *taskwire.Task)
		}{
			// A progress note.
			{"Text", taskwire.TaskUpdates{Text: ptr("50% done")}, func(tk *taskwire.Task) { tk.Text = "50% done" }},
			{"Metadata", taskwire.TaskUpdates{Metadata: json.RawMessage(`{"progress":0.5}`)},
				func(tk *taskwire.Task) { tk.Metadata = json.RawMessage(`{"progress":0.5}`) }},
			// Saying it is still in progress is no status change.
			{"StatusInProgress", taskwire.TaskUpdates{Status: ptr(taskwire.StatusInProgress), Text: ptr("still on it")},
				func(tk *taskwire.Task) { tk.Text = "still on it" }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				want := *s.claimed(newTask(1), "w1", t0.Add(10*time.Second))
				now := t0.Add(40 * time.Second)
				tt.want(&want)
				want.LeaseExpiresAt = now.Add(time.Duration(want.LeaseMs) * time.Millisecond)
				want.UpdatedAt = now
				got := s.update(store.UpdateTaskParams{ID: taskID(1), WorkerID: "w1", Attempt: ptr(1), Updates: tt.updates, Now: now})
				wantReturned(t, "UpdateTask", want, got)
				s.wantStored(want)
			})
		}
	})

	// A worker may update only a task it holds in progress.
	t.Run("WorkerConflicts", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name            string
			setup           func(s *bundle)
			wantStatus      taskwire.Status
			wantAssigned    string
			wantOtherWorker bool
		}{
			{"HeldByOther", func(s *bundle) { s.claimed(newTask(1), "w2", t0.Add(time.Second)) }, taskwire.StatusInProgress, "w2", true},
			{"Pending", func(s *bundle) { s.create(newTask(1)) }, taskwire.StatusPending, "", false},
			// Reserved for the worker but not claimed yet.
			{"Reserved", reserved, taskwire.StatusPending, "w1", false},
			// A late progress note after the worker completed the task.
			{"Final", completed, taskwire.StatusCompleted, "w1", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				before := s.get(taskID(1))
				_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: taskID(1), WorkerID: "w1",
					Updates: taskwire.TaskUpdates{Text: ptr("progress")}, Now: t0.Add(time.Minute)})
				wantConflict(t, err, taskID(1), tt.wantStatus, tt.wantAssigned)
				wantOtherWorker(t, err, tt.wantOtherWorker)
				s.unchanged(before)
			})
		}
	})

	// An update carrying an attempt that is not the current one is fenced
	// out, whoever sends it and whoever claimed the task again.
	t.Run("StaleAttempt", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ name, worker, holder string }{
			{"Worker", "w1", "w1"}, {"Admin", "", "w1"}, {"OtherWorkerHolds", "w1", "w2"},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				inProgress(s)
				s.unassign(taskID(1), t0.Add(2*time.Second))
				s.reclaim(taskID(1), taskwire.DefaultQueue, c.holder, t0.Add(3*time.Second))
				before := s.get(taskID(1))
				_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: taskID(1), WorkerID: c.worker, Attempt: ptr(1),
					Updates: taskwire.TaskUpdates{Text: ptr("zombie")}, Now: t0.Add(time.Minute)})
				wantConflict(t, err, taskID(1), taskwire.StatusInProgress, c.holder)
				wantOtherWorker(t, err, false)
				s.unchanged(before)
			})
		}
	})

	// An admin's status change: to pending requeues (from a final state it
	// is a re-run), to completed or failed finalizes.
	t.Run("Status", func(t *testing.T) {
		t.Parallel()
		now := t0.Add(time.Minute)
		requeued := func(tk *taskwire.Task) {
			tk.Status, tk.AssignedTo, tk.LeaseExpiresAt = taskwire.StatusPending, "", time.Time{}
			tk.Result, tk.ResultSize, tk.Error, tk.CompletedAt, tk.DurationMs = nil, 0, "", time.Time{}, 0
		}
		finalized := func(status taskwire.Status) func(tk *taskwire.Task) {
			return func(tk *taskwire.Task) {
				tk.Status, tk.LeaseExpiresAt, tk.CompletedAt = status, time.Time{}, now
				tk.DurationMs = now.Sub(tk.CreatedAt).Milliseconds()
			}
		}
		tests := []struct {
			name  string
			setup func(s *bundle)
			to    taskwire.Status
			want  func(tk *taskwire.Task)
		}{
			// Back to the queue: assignment and lease cleared, attempt kept.
			{"InProgressToPending", inProgress, taskwire.StatusPending, requeued},
			// The reservation is cleared.
			{"ReservedToPending", reserved, taskwire.StatusPending, requeued},
			// A re-run: result and completion cleared too.
			{"CompletedToPending", completed, taskwire.StatusPending, requeued},
			// A re-run: the error cleared too.
			{"FailedToPending", failed, taskwire.StatusPending, requeued},
			// Finalized as CompleteTask does (no result, no error).
			{"InProgressToCompleted", inProgress, taskwire.StatusCompleted, finalized(taskwire.StatusCompleted)},
			{"InProgressToFailed", inProgress, taskwire.StatusFailed, finalized(taskwire.StatusFailed)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				want := *s.get(taskID(1))
				tt.want(&want)
				want.UpdatedAt = now
				got := s.update(store.UpdateTaskParams{ID: taskID(1), Updates: taskwire.TaskUpdates{Status: ptr(tt.to)}, Now: now})
				wantReturned(t, "UpdateTask", want, got)
				s.wantStored(want)
			})
		}
	})

	// A re-run has no result any more and is claimed as a new attempt.
	t.Run("Rerun", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		completed(s)
		s.update(store.UpdateTaskParams{ID: taskID(1), Updates: taskwire.TaskUpdates{Status: ptr(taskwire.StatusPending)}, Now: t0.Add(time.Minute)})
		if _, _, err := s.st.OpenResult(s.ctx, taskID(1)); !errors.Is(err, store.ErrNoResult) {
			t.Errorf("OpenResult after re-run: err = %v, want store.ErrNoResult", err)
		}
		got := s.reclaim(taskID(1), taskwire.DefaultQueue, "w2", t0.Add(2*time.Minute))
		if got.Attempt != 2 || got.AssignedTo != "w2" {
			t.Errorf("re-run claimed: attempt %d, assigned to %q; want attempt 2, w2", got.Attempt, got.AssignedTo)
		}
	})

	// Only an in_progress task may be set to in_progress: claiming is the
	// way there.
	t.Run("ToInProgress", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name         string
			setup        func(s *bundle)
			wantAssigned string
		}{
			{"Pending", func(s *bundle) { s.create(newTask(1)) }, ""},
			{"Reserved", reserved, "w1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t, newStore)
				tt.setup(s)
				before := s.get(taskID(1))
				_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: taskID(1),
					Updates: taskwire.TaskUpdates{Status: ptr(taskwire.StatusInProgress)}, Now: t0.Add(time.Minute)})
				wantConflict(t, err, taskID(1), taskwire.StatusPending, tt.wantAssigned)
				s.unchanged(before)
			})
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t, newStore)
		s.create(newTask(1))
		_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: taskID(2), Updates: taskwire.TaskUpdates{Text: ptr("x")}, Now: t0.Add(time.Second)})
		wantTaskNotFound(t, err, taskID(2))
	})
}

// The states of task 1 that several tests start from.

// inProgress: task 1 claimed by w1 (attempt 1).
func inProgress(s *bundle) { s.claimed(newTask(1), "w1", t0.Add(time.Second)) }

// reserved: task 1 pending, reserved for w1.
func reserved(s *bundle) {
	s.create(newTask(1))
	s.assign(taskID(1), "w1", t0.Add(time.Second))
}

// completed: task 1 completed by w1 with a result.
func completed(s *bundle) {
	inProgress(s)
	s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Result: json.RawMessage(`{"ok":true}`), Now: t0.Add(2 * time.Second)})
}

// failed: task 1 failed by w1.
func failed(s *bundle) {
	inProgress(s)
	s.complete(store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Failed: true, Error: "boom", Now: t0.Add(2 * time.Second)})
}

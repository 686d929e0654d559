package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// Tests of task.get, task.assign, task.unassign and task.delete.

func TestGet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := createTask(t, b, params{"metadata": params{"k": "v"}})
	if diff := cmp.Diff(task, getTask(t, b, task.ID), jsonEq); diff != "" {
		t.Errorf("task.get (-created +got):\n%s", diff)
	}
	wantError(t, b, taskwire.MethodTaskGet, params{"id": "t-nope"}, notFound("t-nope"))
	// An id that could be SQL finds nothing and leaks nothing.
	wantError(t, b, taskwire.MethodTaskGet, params{"id": "' OR 1=1 --"}, notFound("' OR 1=1 --"))
	wantInvalid(t, b, taskwire.MethodTaskGet, params{}, "id")
	wantInvalid(t, b, taskwire.MethodTaskGet, params{"id": ""}, "id")
	wantInvalid(t, b, taskwire.MethodTaskGet, params{"id": 1}, "id")
	wantInvalid(t, b, taskwire.MethodTaskGet, params{"id": task.ID, "full": true}, "full")
}

func TestAssign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    func(id string) params
	}{
		{"workerId", func(id string) params { return params{"taskId": id, "workerId": "w1"} }},
		{"instanceId", func(id string) params { return params{"taskId": id, "instanceId": "w1"} }},
		{"both naming the same worker", func(id string) params {
			return params{"taskId": id, "workerId": "w1", "instanceId": "w1"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, clk := withFakeClock(t)
			register(t, b, "w1")
			task := createTask(t, b, nil)
			clk.Advance(time.Second)
			got := call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, tt.p(task.ID))
			want := taskwire.AssignResult{TaskID: task.ID, WorkerID: "w1", AssignedAt: taskwire.NewTime(t0.Add(time.Second))}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("task.assign (-want +got):\n%s", diff)
			}
			stored := getTask(t, b, task.ID)
			if stored.Status != taskwire.StatusPending || stored.AssignedTo != "w1" || stored.Attempt != 0 {
				t.Errorf("assigned task: status %s assignedTo %q attempt %d, want pending w1 0",
					stored.Status, stored.AssignedTo, stored.Attempt)
			}
			// Assigning it again to the same worker is fine.
			call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, tt.p(task.ID))
			if got := claimOne(t, b, "w1"); got.ID != task.ID {
				t.Errorf("w1 claimed %s, want its reservation %s", got.ID, task.ID)
			}
		})
	}
}

func TestAssignErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare returns the task and the params of the failing call.
		prepare func(t *testing.T, b *bundle) (*taskwire.Task, params)
		want    func(task *taskwire.Task) *taskwire.Error // exact error; nil for a conflict
		status  taskwire.Status                           // of the conflict
		to      string                                    // assignedTo of the conflict
		field   string                                    // of a -32602
	}{
		{name: "task not found", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			return createTask(t, b, nil), params{"taskId": "t-none", "workerId": "w1"}
		}, want: func(*taskwire.Task) *taskwire.Error { return notFound("t-none") }},
		{name: "worker not registered", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := createTask(t, b, nil)
			return task, params{"taskId": task.ID, "instanceId": "ghost"}
		}, want: func(*taskwire.Task) *taskwire.Error { return notRegistered("ghost") }},
		{name: "reserved for another worker", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			register(t, b, "w2")
			task := createTask(t, b, nil)
			call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": task.ID, "workerId": "w2"})
			return getTask(t, b, task.ID), params{"taskId": task.ID, "workerId": "w1"}
		}, status: taskwire.StatusPending, to: "w2"},
		{name: "in progress", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := claimed(t, b, "w2")
			return task, params{"taskId": task.ID, "workerId": "w1"}
		}, status: taskwire.StatusInProgress, to: "w2"},
		{name: "in progress, to its own worker", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := claimed(t, b, "w1")
			return task, params{"taskId": task.ID, "workerId": "w1"}
		}, status: taskwire.StatusInProgress, to: "w1"},
		{name: "completed", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := claimed(t, b, "w2")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID})
			return getTask(t, b, task.ID), params{"taskId": task.ID, "workerId": "w1"}
		}, status: taskwire.StatusCompleted, to: "w2"},
		{name: "no worker named", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := createTask(t, b, nil)
			return task, params{"taskId": task.ID}
		}, field: "workerId"},
		{name: "workerId and instanceId differ", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := createTask(t, b, nil)
			return task, params{"taskId": task.ID, "workerId": "w1", "instanceId": "w2"}
		}, field: "instanceId"},
		{name: "id instead of taskId", prepare: func(t *testing.T, b *bundle) (*taskwire.Task, params) {
			task := createTask(t, b, nil)
			return task, params{"id": task.ID, "workerId": "w1"}
		}, field: "taskId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			register(t, b, "w1")
			task, p := tt.prepare(t, b)
			switch {
			case tt.want != nil:
				wantError(t, b, taskwire.MethodTaskAssign, p, tt.want(task))
			case tt.field != "":
				wantInvalid(t, b, taskwire.MethodTaskAssign, p, tt.field)
			default:
				wantConflict(t, b, taskwire.MethodTaskAssign, p, task.ID, tt.status, tt.to)
			}
			wantUnchanged(t, b, task)
		})
	}
}

func TestUnassign(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare returns a task and its assignment before the call.
		prepare func(t *testing.T, b *bundle) (*taskwire.Task, string)
	}{
		// An in-progress task goes back to pending, its attempt kept.
		{"in progress", func(t *testing.T, b *bundle) (*taskwire.Task, string) {
			return claimed(t, b, "w1"), "w1"
		}},
		// A reservation is cleared.
		{"reserved", func(t *testing.T, b *bundle) (*taskwire.Task, string) {
			register(t, b, "w1")
			task := createTask(t, b, nil)
			call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": task.ID, "workerId": "w1"})
			return getTask(t, b, task.ID), "w1"
		}},
		// Nothing to clear: previousAssignment is null.
		{"not assigned", func(t *testing.T, b *bundle) (*taskwire.Task, string) {
			return createTask(t, b, nil), ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, clk := withFakeClock(t)
			task, prev := tt.prepare(t, b)
			clk.Advance(time.Second)
			raw := call[json.RawMessage](t, b, taskwire.MethodTaskUnassign, params{"taskId": task.ID})
			want := map[string]any{"taskId": task.ID, "previousAssignment": nil, "unassignedAt": "2025-01-19T12:00:01.000Z"}
			if prev != "" {
				want["previousAssignment"] = prev
			}
			if diff := cmp.Diff(want, rawObject(t, raw)); diff != "" {
				t.Errorf("task.unassign (-want +got):\n%s", diff)
			}
			got := getTask(t, b, task.ID)
			if got.Status != taskwire.StatusPending || got.AssignedTo != "" || !got.LeaseExpiresAt.IsZero() ||
				got.Attempt != task.Attempt {
				t.Errorf("after unassign: status %s assignedTo %q lease %v attempt %d; want pending, none, none, %d",
					got.Status, got.AssignedTo, got.LeaseExpiresAt, got.Attempt, task.Attempt)
			}
			// Anyone may claim it now.
			register(t, b, "w9")
			if c := claimOne(t, b, "w9"); c.ID != task.ID || c.Attempt != task.Attempt+1 {
				t.Errorf("claim after unassign: %s attempt %d", c.ID, c.Attempt)
			}
		})
	}
}

func TestUnassignErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wantError(t, b, taskwire.MethodTaskUnassign, params{"taskId": "t-none"}, notFound("t-none"))
	wantInvalid(t, b, taskwire.MethodTaskUnassign, params{}, "taskId")
	task := claimed(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1"})
	final := getTask(t, b, task.ID)
	// A final task keeps its outcome.
	wantConflict(t, b, taskwire.MethodTaskUnassign, params{"taskId": task.ID}, task.ID, taskwire.StatusCompleted, "w1")
	wantUnchanged(t, b, final)
}

func TestDelete(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	keep := createTask(t, b, params{"queue": "keep"})
	task := claimed(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "result": params{"big": "r"}})
	keyed := createTask(t, b, params{"idempotencyKey": "once"})
	clk.Advance(time.Second)

	for _, id := range []string{task.ID, keyed.ID} {
		raw := call[json.RawMessage](t, b, taskwire.MethodTaskDelete, params{"id": id})
		want := map[string]any{"id": id, "deleted": true, "deletedAt": "2025-01-19T12:00:01.000Z"}
		if diff := cmp.Diff(want, rawObject(t, raw)); diff != "" {
			t.Errorf("task.delete (-want +got):\n%s", diff)
		}
		wantError(t, b, taskwire.MethodTaskGet, params{"id": id}, notFound(id))
		// Deleting again: the task is not there.
		wantError(t, b, taskwire.MethodTaskDelete, params{"id": id}, notFound(id))
	}
	if got := listTasks(t, b, params{}); got.TotalCount != 1 || len(got.Tasks) != 1 || got.Tasks[0].ID != keep.ID {
		t.Errorf("after deletes: %d tasks %v, want only %s", got.TotalCount, ids(got.Tasks), keep.ID)
	}
	// The result went too.
	if resp, body := httpGet(t, b, "/v1/tasks/"+task.ID+"/result"); resp.StatusCode != 404 {
		t.Errorf("result of a deleted task: HTTP %d %s", resp.StatusCode, body)
	}
	// So did its idempotency key: a create with it makes a new task.
	again := createTask(t, b, params{"idempotencyKey": "once"})
	if again.ID == keyed.ID {
		t.Errorf("create with the key of a deleted task returned the deleted task")
	}
	wantInvalid(t, b, taskwire.MethodTaskDelete, params{"taskId": keep.ID}, "id")
	wantUnchanged(t, b, keep)
}

func TestDeleteInProgress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := claimed(t, b, "w1")
	call[taskwire.DeleteResult](t, b, taskwire.MethodTaskDelete, params{"id": task.ID})
	// The worker finds it gone.
	wantError(t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1}, notFound(task.ID))
	ws := call[taskwire.WorkersResult](t, b, taskwire.MethodSystemWorkers, params{})
	if len(ws.Workers) != 1 || len(ws.Workers[0].Tasks) != 0 {
		t.Errorf("workers after delete: %+v, want w1 without tasks", ws.Workers)
	}
}

package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

func TestUpdateFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		updates params
		// apply changes the task as the update must.
		apply func(*taskwire.Task)
	}{
		{"text", params{"text": "new text"}, func(t *taskwire.Task) { t.Text = "new text" }},
		{"text of 500 characters", params{"text": strings.Repeat("ü", 500)},
			func(t *taskwire.Task) { t.Text = strings.Repeat("ü", 500) }},
		{"priority", params{"priority": 0}, func(t *taskwire.Task) { t.Priority = 0 }},
		// Metadata merges key by key; null removes a key.
		{"metadata merge", params{"metadata": params{"b": nil, "c": 3, "a": "one"}},
			func(t *taskwire.Task) { t.Metadata = json.RawMessage(`{"a":"one","keep":true,"c":3}`) }},
		// Removing every key leaves no metadata.
		{"metadata emptied", params{"metadata": params{"a": nil, "b": nil, "keep": nil}},
			func(t *taskwire.Task) { t.Metadata = nil }},
		// A null patch changes nothing.
		{"metadata null", params{"metadata": nil}, func(*taskwire.Task) {}},
		{"everything", params{"text": "t2", "priority": 99, "metadata": params{"a": 2}},
			func(t *taskwire.Task) {
				t.Text, t.Priority = "t2", 99
				t.Metadata = json.RawMessage(`{"a":2,"b":2,"keep":true}`)
			}},
		// Nothing to change: the task only gets a new updatedAt.
		{"empty updates", params{}, func(*taskwire.Task) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, clk := withFakeClock(t)
			task := createTask(t, b, params{"text": "old", "priority": 40,
				"metadata": params{"a": 1, "b": 2, "keep": true}})
			clk.Advance(time.Second)
			got := call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": tt.updates})
			want := *task
			tt.apply(&want)
			want.UpdatedAt = t0.Add(time.Second)
			if diff := cmp.Diff(&want, got, jsonEq, cmp.FilterPath(func(p cmp.Path) bool {
				return p.String() == "UpdatedAt" && len(tt.updates) == 0
			}, cmp.Ignore())); diff != "" {
				t.Errorf("updated task (-want +got):\n%s", diff)
			}
			wantUnchanged(t, b, got)
		})
	}
}

func TestUpdatePriorityMovesTask(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	register(t, b, "w1")
	first := createTask(t, b, nil)
	clk.Advance(time.Millisecond)
	second := createTask(t, b, nil)
	call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": second.ID, "updates": params{"priority": 51}})
	if got := claimOne(t, b, "w1"); got.ID != second.ID {
		t.Errorf("claimed %s, want the reprioritized %s", got.ID, second.ID)
	}
	call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": first.ID, "updates": params{"priority": 0}})
	third := createTask(t, b, params{"priority": 1})
	if got := claimOne(t, b, "w1"); got.ID != third.ID {
		t.Errorf("claimed %s, want %s over the demoted %s", got.ID, third.ID, first.ID)
	}
}

func TestUpdateByWorkerRenewsLease(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	task := claimed(t, b, "w1") // lease until t0 + 300 s
	if !task.LeaseExpiresAt.Equal(t0.Add(300 * time.Second)) {
		t.Fatalf("lease after claim until %v", task.LeaseExpiresAt)
	}
	clk.Advance(time.Minute)
	got := call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "workerId": "w1",
		"attempt": 1, "updates": params{"metadata": params{"progress": 50}}})
	want := *task
	want.Metadata = json.RawMessage(`{"progress":50}`)
	want.LeaseExpiresAt = t0.Add(time.Minute + 300*time.Second)
	want.UpdatedAt = t0.Add(time.Minute)
	if diff := cmp.Diff(&want, got, jsonEq); diff != "" {
		t.Errorf("update by its worker (-want +got):\n%s", diff)
	}
	wantUnchanged(t, b, got)
}

func TestUpdateConflicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, b *bundle) (task *taskwire.Task, p params, status taskwire.Status, assignedTo string)
	}{
		// A worker updates a task held by another.
		{"another worker's task", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			return task, params{"id": task.ID, "workerId": "w2", "updates": params{"text": "hijack"}},
				taskwire.StatusInProgress, "w1"
		}},
		// A worker updates a task nobody claimed.
		{"a pending task, as a worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := createTask(t, b, nil)
			return task, params{"id": task.ID, "workerId": "w1", "updates": params{"priority": 1}},
				taskwire.StatusPending, ""
		}},
		// A worker updates its task after it completed it.
		{"a completed task, as its worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1"})
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w1", "updates": params{"text": "late"}},
				taskwire.StatusCompleted, "w1"
		}},
		// The attempt fences out a zombie of an earlier claim.
		{"stale attempt", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			first := claimed(t, b, "w1")
			call[taskwire.UnassignResult](t, b, taskwire.MethodTaskUnassign, params{"taskId": first.ID})
			second := claimOne(t, b, "w1")
			return second, params{"id": first.ID, "workerId": "w1", "attempt": 1, "updates": params{"text": "zombie"}},
				taskwire.StatusInProgress, "w1"
		}},
		// Only a claim starts a task.
		{"status in_progress on a pending task", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := createTask(t, b, nil)
			return task, params{"id": task.ID, "updates": params{"status": "in_progress"}}, taskwire.StatusPending, ""
		}},
		// A final task does not become final again.
		{"status failed on a completed task", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "result": 7})
			return getTask(t, b, task.ID), params{"id": task.ID, "updates": params{"status": "failed"}},
				taskwire.StatusCompleted, "w1"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task, p, status, assignedTo := tt.prepare(t, b)
			wantConflict(t, b, taskwire.MethodTaskUpdate, p, task.ID, status, assignedTo)
			wantUnchanged(t, b, task)
		})
	}
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		updates any
		field   string
	}{
		{"text empty", params{"text": ""}, "updates.text"},
		{"text 501 characters", params{"text": strings.Repeat("é", 501)}, "updates.text"},
		{"priority 101", params{"priority": 101}, "updates.priority"},
		{"status unknown", params{"status": "done"}, "updates.status"},
		{"metadata an array", params{"metadata": []int{1}}, "updates.metadata"},
		{"unknown field", params{"queue": "other"}, "updates.queue"},
		{"updates not an object", "text", "updates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task := createTask(t, b, params{"metadata": params{"a": 1}})
			wantInvalid(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": tt.updates}, tt.field)
			wantUnchanged(t, b, task)
		})
	}
	t.Run("updates missing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		task := createTask(t, b, nil)
		wantInvalid(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID}, "updates")
		wantUnchanged(t, b, task)
	})
	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		wantError(t, b, taskwire.MethodTaskUpdate, params{"id": "t-missing", "updates": params{"text": "x"}},
			notFound("t-missing"))
	})
}

func TestUpdateMetadataTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	half := strings.Repeat("x", 40<<10)
	task := createTask(t, b, params{"metadata": params{"a": half}})
	// Each patch fits; the merged object does not.
	wantCodeData(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"metadata": params{"b": half}}},
		taskwire.CodeTooLarge, map[string]any{"field": "updates.metadata", "limit": taskwire.MaxMetadataBytes})
	wantUnchanged(t, b, task)
	// The patch alone over the limit.
	big := json.RawMessage(`{"k":"` + strings.Repeat("y", taskwire.MaxMetadataBytes) + `"}`)
	wantCodeData(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"metadata": big}},
		taskwire.CodeTooLarge, map[string]any{"field": "updates.metadata", "limit": taskwire.MaxMetadataBytes})
	wantUnchanged(t, b, task)
}

func TestUpdateStatusRerun(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	task := claimed(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": "v1"})
	clk.Advance(time.Second)
	// An admin moves the final task back to pending: a deliberate re-run.
	got := call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"status": "pending"}})
	want := *task
	want.Status, want.AssignedTo, want.LeaseExpiresAt = taskwire.StatusPending, "", time.Time{}
	want.UpdatedAt = t0.Add(time.Second)
	if diff := cmp.Diff(&want, got, jsonEq); diff != "" {
		t.Errorf("re-run task (-want +got):\n%s", diff)
	}
	wantUnchanged(t, b, got) // no result, no completion left
	if again := claimOne(t, b, "w1"); again.ID != task.ID || again.Attempt != 2 {
		t.Errorf("claim after re-run: %s attempt %d, want %s attempt 2", again.ID, again.Attempt, task.ID)
	}
}

func TestUpdateStatusFinalizes(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t)
	task := claimed(t, b, "w1")
	got := call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"status": "failed"}})
	if got.Status != taskwire.StatusFailed || got.CompletedAt.IsZero() {
		t.Errorf("status %s completedAt %v, want failed and set", got.Status, got.CompletedAt)
	}
	// Completion is final for the worker too.
	wantConflict(t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1},
		task.ID, taskwire.StatusFailed, "w1")
}

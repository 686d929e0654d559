package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// claimed creates a task and claims it for worker (registered here).
func claimed(tb testing.TB, b *bundle, worker string) *taskwire.Task {
	tb.Helper()
	register(tb, b, worker)
	task := createTask(tb, b, nil)
	got := claim(tb, b, worker, params{"queues": []string{task.Queue}})
	if got.TaskID != task.ID {
		tb.Fatalf("claim for %s got %q, want %s", worker, got.TaskID, task.ID)
	}
	return got.Task
}

func TestCompleteIDAlias(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    func(id string) params
	}{
		// The task named by id.
		{"id", func(id string) params { return params{"id": id, "workerId": "w1"} }},
		// The task named by taskId, as the seed page allows.
		{"taskId", func(id string) params { return params{"taskId": id, "workerId": "w1"} }},
		// Both, naming the same task.
		{"both", func(id string) params { return params{"id": id, "taskId": id, "workerId": "w1"} }},
		// No workerId: an admin completes it (auth off).
		{"taskId alone", func(id string) params { return params{"taskId": id} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, _ := withFakeClock(t)
			task := claimed(t, b, "w1")
			got := call[json.RawMessage](t, b, taskwire.MethodTaskComplete, tt.p(task.ID))
			want := map[string]any{"id": task.ID, "status": "completed", "completedAt": "2025-01-19T12:00:00.000Z"}
			if diff := cmp.Diff(want, rawObject(t, got)); diff != "" {
				t.Errorf("complete (-want +got):\n%s", diff)
			}
			if s := getTask(t, b, task.ID).Status; s != taskwire.StatusCompleted {
				t.Errorf("status = %s, want completed", s)
			}
		})
	}
}

func TestCompleteParamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		p     func(id string) params
		field string
	}{
		// Neither id nor taskId.
		{"no task named", func(string) params { return params{"workerId": "w1", "result": 1} }, "id"},
		// id and taskId naming different tasks.
		{"id and taskId differ", func(id string) params { return params{"id": id, "taskId": "t-other"} }, "taskId"},
		{"id a number", func(string) params { return params{"id": 12} }, "id"},
		{"error not a string", func(id string) params { return params{"id": id, "error": params{"e": 1}} }, "error"},
		{"attempt negative", func(id string) params { return params{"id": id, "attempt": -1} }, "attempt"},
		{"unknown param", func(id string) params { return params{"id": id, "status": "completed"} }, "status"},
		// A failure's result would be dropped: both are refused.
		{"result and error", func(id string) params { return params{"id": id, "error": "e", "result": params{"x": 1}} }, "result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task := claimed(t, b, "w1")
			wantInvalid(t, b, taskwire.MethodTaskComplete, tt.p(task.ID), tt.field)
			wantUnchanged(t, b, task)
		})
	}
}

func TestCompleteOutcome(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	register(t, b, "w1")
	ok := createTask(t, b, nil)
	bad := createTask(t, b, nil)
	clk.Advance(1500 * time.Millisecond)
	claim(t, b, "w1", params{"maxTasks": 2})
	clk.Advance(2500 * time.Millisecond)
	done := t0.Add(4 * time.Second)

	// With a result: completed.
	r := call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete,
		params{"id": ok.ID, "workerId": "w1", "result": params{"pages": 3}})
	if diff := cmp.Diff(taskwire.CompleteResult{ID: ok.ID, Status: taskwire.StatusCompleted,
		CompletedAt: taskwire.NewTime(done)}, r); diff != "" {
		t.Errorf("complete (-want +got):\n%s", diff)
	}
	// With an error: failed.
	r = call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete,
		params{"id": bad.ID, "workerId": "w1", "error": "disk full"})
	if diff := cmp.Diff(taskwire.CompleteResult{ID: bad.ID, Status: taskwire.StatusFailed,
		CompletedAt: taskwire.NewTime(done)}, r); diff != "" {
		t.Errorf("fail (-want +got):\n%s", diff)
	}

	final := func(task *taskwire.Task, status taskwire.Status, result, errText string) *taskwire.Task {
		f := *task
		f.Status, f.AssignedTo, f.Attempt, f.UpdatedAt = status, "w1", 1, done
		f.CompletedAt, f.DurationMs = done, 4000 // completedAt - createdAt
		f.Error = errText
		if result != "" {
			f.Result = json.RawMessage(result)
			f.ResultSize = int64(len(result))
		}
		return &f
	}
	got := getTask(t, b, ok.ID)
	if diff := cmp.Diff(final(ok, taskwire.StatusCompleted, `{"pages":3}`, ""), got, jsonEq,
		ignoreLeaseAndSize); diff != "" {
		t.Errorf("completed task (-want +got):\n%s", diff)
	}
	got = getTask(t, b, bad.ID)
	if diff := cmp.Diff(final(bad, taskwire.StatusFailed, "", "disk full"), got, jsonEq,
		ignoreLeaseAndSize); diff != "" {
		t.Errorf("failed task (-want +got):\n%s", diff)
	}
	raw := rawObject(t, call[json.RawMessage](t, b, taskwire.MethodTaskGet, params{"id": bad.ID}))
	if raw["result"] != nil || raw["durationMs"] != float64(4000) || raw["completedAt"] != "2025-01-19T12:00:04.000Z" {
		t.Errorf("failed task wire form: result %v, durationMs %v, completedAt %v", raw["result"], raw["durationMs"], raw["completedAt"])
	}
}

// ignoreLeaseAndSize leaves out of a comparison what the contract does not
// fix for a final task: its last lease, and the stored size.
var ignoreLeaseAndSize = cmp.FilterPath(func(p cmp.Path) bool {
	s := p.String()
	return s == "LeaseExpiresAt" || s == "ResultSize"
}, cmp.Ignore())

func TestCompleteNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	for _, p := range []params{
		{"id": "t-01JNOTATASK"},
		{"taskId": "t-01JNOTATASK", "workerId": "w1", "result": "r"},
	} {
		wantError(t, b, taskwire.MethodTaskComplete, p, notFound("t-01JNOTATASK"))
	}
	if n := taskCount(t, b); n != 0 {
		t.Errorf("%d tasks after failed completes, want 0", n)
	}
}

func TestCompleteConflicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare returns the task and the params of the complete call
		// that must fail, and the status and assignment the error reports.
		prepare func(t *testing.T, b *bundle) (task *taskwire.Task, p params, status taskwire.Status, assignedTo string)
	}{
		{"pending and not assigned", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := createTask(t, b, nil)
			return task, params{"id": task.ID, "result": 1}, taskwire.StatusPending, ""
		}},
		{"pending and not assigned, with a worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			register(t, b, "w1")
			task := createTask(t, b, nil)
			return task, params{"id": task.ID, "workerId": "w1"}, taskwire.StatusPending, ""
		}},
		{"assigned to another worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			register(t, b, "w2")
			return task, params{"id": task.ID, "workerId": "w2", "result": "mine"}, taskwire.StatusInProgress, "w1"
		}},
		{"reserved for another worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			register(t, b, "w1")
			task := createTask(t, b, nil)
			call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": task.ID, "workerId": "w1"})
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w9"}, taskwire.StatusPending, "w1"
		}},
		{"stale attempt of the same worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			first := claimed(t, b, "w1")
			call[taskwire.UnassignResult](t, b, taskwire.MethodTaskUnassign, params{"taskId": first.ID})
			second := claimOne(t, b, "w1")
			if second.ID != first.ID || second.Attempt != 2 {
				t.Fatalf("second claim: %s attempt %d", second.ID, second.Attempt)
			}
			return second, params{"id": first.ID, "workerId": "w1", "attempt": 1, "result": "late"},
				taskwire.StatusInProgress, "w1"
		}},
		{"attempt from the future", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			return task, params{"id": task.ID, "workerId": "w1", "attempt": 2}, taskwire.StatusInProgress, "w1"
		}},
		{"already failed, now a result", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "error": "boom"})
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w1", "result": "ok"}, taskwire.StatusFailed, "w1"
		}},
		{"already completed, now failed", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1})
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w1", "error": "boom"}, taskwire.StatusCompleted, "w1"
		}},
		{"already completed, another result", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1})
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w1", "result": 2}, taskwire.StatusCompleted, "w1"
		}},
		{"already completed, now by another worker", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": 1})
			register(t, b, "w2")
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w2", "result": 1}, taskwire.StatusCompleted, "w1"
		}},
		{"already failed, another error", func(t *testing.T, b *bundle) (*taskwire.Task, params, taskwire.Status, string) {
			task := claimed(t, b, "w1")
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "error": "a"})
			return getTask(t, b, task.ID), params{"id": task.ID, "workerId": "w1", "error": "b"}, taskwire.StatusFailed, "w1"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task, p, status, assignedTo := tt.prepare(t, b)
			wantConflict(t, b, taskwire.MethodTaskComplete, p, task.ID, status, assignedTo)
			wantUnchanged(t, b, task)
		})
	}
}

func TestCompleteCurrentAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := claimed(t, b, "w1")
	call[taskwire.UnassignResult](t, b, taskwire.MethodTaskUnassign, params{"taskId": first.ID})
	second := claimOne(t, b, "w1")
	// The current attempt completes; the task keeps it.
	r := call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete,
		params{"id": first.ID, "workerId": "w1", "attempt": second.Attempt, "result": "done"})
	if r.Status != taskwire.StatusCompleted {
		t.Fatalf("status = %s", r.Status)
	}
	if got := getTask(t, b, first.ID); got.Attempt != 2 || string(got.Result) != `"done"` {
		t.Errorf("task attempt %d result %s, want 2 and \"done\"", got.Attempt, got.Result)
	}
}

func TestCompleteRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    params // without id and workerId
	}{
		{"result", params{"result": params{"rows": []int{1, 2, 3}}}},
		{"result and attempt", params{"result": "ok", "attempt": 1}},
		{"no result", params{}},
		{"error", params{"error": "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, clk := withFakeClock(t)
			task := claimed(t, b, "w1")
			p := params{"id": task.ID, "workerId": "w1"}
			for k, v := range tt.p {
				p[k] = v
			}
			first := call[json.RawMessage](t, b, taskwire.MethodTaskComplete, p)
			stored := getTask(t, b, task.ID)
			clk.Advance(time.Minute)
			// The response was lost; the worker retries the same call.
			again := call[json.RawMessage](t, b, taskwire.MethodTaskComplete, p)
			if diff := cmp.Diff(rawObject(t, first), rawObject(t, again)); diff != "" {
				t.Errorf("retry answered differently (-first +retry):\n%s", diff)
			}
			wantUnchanged(t, b, stored)
		})
	}
}

func TestCompleteResultTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		result string // JSON text
	}{
		{"object", `{"documentsReviewed":15,"optimizations":["index","join"],"nested":{"a":null}}`},
		{"empty object", `{}`},
		{"array", `[1,"two",{"three":3},[4],null]`},
		{"empty array", `[]`},
		{"string", `"2h 30m ✓"`},
		{"empty string", `""`},
		{"number", `42`},
		{"zero", `0`},
		{"negative fraction", `-1.5e-3`},
		{"true", `true`},
		{"false", `false`},
		{"null", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task := claimed(t, b, "w1")
			body := `{"jsonrpc":"2.0","id":1,"method":"task.complete","params":{"id":"` + task.ID +
				`","workerId":"w1","result":` + tt.result + `}}`
			status, raw := post(t, b, body)
			if status != 200 {
				t.Fatalf("HTTP %d: %s", status, raw)
			}
			if resp := rawObject(t, raw); resp["error"] != nil {
				t.Fatalf("complete with result %s: %v", tt.result, resp["error"])
			}
			got := rawObject(t, call[json.RawMessage](t, b, taskwire.MethodTaskGet, params{"id": task.ID}))
			var want any
			if err := json.Unmarshal([]byte(tt.result), &want); err != nil {
				t.Fatal(err)
			}
			if got["status"] != "completed" {
				t.Errorf("status = %v, want completed", got["status"])
			}
			if _, ok := got["result"]; !ok {
				t.Fatal("task.get has no result member")
			}
			if diff := cmp.Diff(want, got["result"]); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			// A retry with the same result is the same completion.
			if status, raw := post(t, b, body); status != 200 || rawObject(t, raw)["error"] != nil {
				t.Errorf("retry with the same %s result: HTTP %d %s", tt.name, status, raw)
			}
		})
	}
}

func TestCompleteResultIsExactBytes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := claimed(t, b, "w1")
	// Numbers beyond float64 and key order are kept as sent.
	result := `{"z":1,"a":12345678901234567890123,"f":1.000000000000000000001}`
	body := `{"jsonrpc":"2.0","id":1,"method":"task.complete","params":{"id":"` + task.ID + `","result":` + result + `}}`
	if status, raw := post(t, b, body); status != 200 || rawObject(t, raw)["error"] != nil {
		t.Fatalf("HTTP %d %s", status, raw)
	}
	if got := getTask(t, b, task.ID).Result; string(got) != result {
		t.Errorf("stored result %s, want %s", got, result)
	}
}

func TestCompleteReserved(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	task := createTask(t, b, nil)
	call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": task.ID, "workerId": "w1"})
	// A pending task assigned to the worker may be completed by it.
	r := call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": "r"})
	if r.Status != taskwire.StatusCompleted {
		t.Fatalf("status %s", r.Status)
	}
	if got := getTask(t, b, task.ID); got.Status != taskwire.StatusCompleted || string(got.Result) != `"r"` {
		t.Errorf("task %s result %s", got.Status, got.Result)
	}
	// A final task is claimed by no one.
	if c := claim(t, b, "w1", nil); c.Claimed {
		t.Errorf("claimed completed task %s", c.TaskID)
	}
}

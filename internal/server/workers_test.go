package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// Tests of system.register, system.heartbeat, system.unregister and
// system.workers.

func workers(tb testing.TB, b *bundle) []taskwire.Worker {
	tb.Helper()
	return call[taskwire.WorkersResult](tb, b, taskwire.MethodSystemWorkers, params{}).Workers
}

func TestRegister(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    params
	}{
		{"id", params{"id": "w-1"}},
		{"workerId", params{"workerId": "w-1"}},
		{"both the same", params{"id": "w-1", "workerId": "w-1"}},
		{"every param", params{"id": "w-1", "roles": []string{"worker"}, "queues": []string{"a", "b"},
			"metadata": params{"host": "h1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, _ := withFakeClock(t)
			raw := call[json.RawMessage](t, b, taskwire.MethodSystemRegister, tt.p)
			want := map[string]any{"registered": true, "heartbeatIntervalMs": float64(10_000), "timeoutMs": float64(30_000)}
			if diff := cmp.Diff(want, rawObject(t, raw)); diff != "" {
				t.Errorf("system.register (-want +got):\n%s", diff)
			}
			w := taskwire.Worker{ID: "w-1", Status: taskwire.WorkerOnline, RegisteredAt: t0, LastSeen: t0}
			if r, ok := tt.p["roles"].([]string); ok {
				w.Roles = r
			}
			if q, ok := tt.p["queues"].([]string); ok {
				w.Queues = q
			}
			if m, ok := tt.p["metadata"]; ok {
				w.Metadata = json.RawMessage(jsonText(m))
			}
			if diff := cmp.Diff(jsonValue(t, []taskwire.Worker{w}), jsonValue(t, workers(t, b))); diff != "" {
				t.Errorf("system.workers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRegisterTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.WorkerTimeout = 9 * time.Second })
	r := call[taskwire.RegisterResult](t, b, taskwire.MethodSystemRegister, params{"id": "w1"})
	if r.TimeoutMs != 9000 || r.HeartbeatIntervalMs <= 0 || r.HeartbeatIntervalMs >= r.TimeoutMs {
		t.Errorf("register with a 9 s timeout: %+v", r)
	}
}

func TestRegisterAgainRefreshes(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	call[taskwire.RegisterResult](t, b, taskwire.MethodSystemRegister,
		params{"id": "w1", "queues": []string{"a"}, "metadata": params{"v": 1}, "roles": []string{"worker"}})
	inB := createTask(t, b, params{"queue": "b"})
	clk.Advance(time.Minute)
	call[taskwire.RegisterResult](t, b, taskwire.MethodSystemRegister,
		params{"workerId": "w1", "queues": []string{"b"}, "metadata": params{"v": 2}})
	want := []taskwire.Worker{{ID: "w1", Status: taskwire.WorkerOnline, Queues: []string{"b"},
		Metadata: json.RawMessage(`{"v":2}`), RegisteredAt: t0, LastSeen: t0.Add(time.Minute)}}
	if diff := cmp.Diff(jsonValue(t, want), jsonValue(t, workers(t, b))); diff != "" {
		t.Errorf("re-registered worker (-want +got):\n%s", diff)
	}
	// One worker, claiming from its new queues.
	if got := claimOne(t, b, "w1"); got.ID != inB.ID {
		t.Errorf("claimed %s, want %s from the new queue", got.ID, inB.ID)
	}
}

func TestRegisterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		p     params
		field string
	}{
		{"no id", params{"queues": []string{"a"}}, "id"},
		{"id and workerId differ", params{"id": "w1", "workerId": "w2"}, "workerId"},
		{"id with a space", params{"id": "w 1"}, "id"},
		{"id empty", params{"id": ""}, "id"},
		{"id 129 characters", params{"id": strings.Repeat("w", 129)}, "id"},
		{"queue invalid", params{"id": "w1", "queues": []string{"Q"}}, "queues"},
		{"queues repeated", params{"id": "w1", "queues": []string{"a", "a"}}, "queues"},
		{"roles not a list", params{"id": "w1", "roles": "admin"}, "roles"},
		{"metadata an array", params{"id": "w1", "metadata": []int{}}, "metadata"},
		{"unknown param", params{"id": "w1", "name": "x"}, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			wantInvalid(t, b, taskwire.MethodSystemRegister, tt.p, tt.field)
			if ws := workers(t, b); len(ws) != 0 {
				t.Errorf("a rejected register left workers %+v", ws)
			}
		})
	}
	t.Run("metadata too large", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		big := json.RawMessage(`{"k":"` + strings.Repeat("x", taskwire.MaxMetadataBytes) + `"}`)
		wantCodeData(t, b, taskwire.MethodSystemRegister, params{"id": "w1", "metadata": big},
			taskwire.CodeTooLarge, map[string]any{"field": "metadata", "limit": taskwire.MaxMetadataBytes})
		if ws := workers(t, b); len(ws) != 0 {
			t.Errorf("a rejected register left workers %+v", ws)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"instanceId", "workerId"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			b, clk := withFakeClock(t)
			register(t, b, "w1")
			register(t, b, "w2")
			short := createTask(t, b, params{"leaseMs": 60_000})
			long := createTask(t, b, nil)
			other := createTask(t, b, nil)
			claim(t, b, "w1", params{"maxTasks": 2})
			otherClaimed := claimOne(t, b, "w2")
			if otherClaimed.ID != other.ID {
				t.Fatalf("w2 claimed %s", otherClaimed.ID)
			}
			clk.Advance(30 * time.Second)

			raw := call[json.RawMessage](t, b, taskwire.MethodSystemHeartbeat, params{key: "w1"})
			if diff := cmp.Diff(map[string]any{"alive": true}, rawObject(t, raw)); diff != "" {
				t.Errorf("system.heartbeat (-want +got):\n%s", diff)
			}
			// Every lease of w1 runs from now; w2's is untouched.
			now := t0.Add(30 * time.Second)
			for _, tc := range []struct {
				id    string
				until time.Time
			}{
				{short.ID, now.Add(60 * time.Second)},
				{long.ID, now.Add(300 * time.Second)},
				{other.ID, t0.Add(300 * time.Second)},
			} {
				if got := getTask(t, b, tc.id).LeaseExpiresAt; !got.Equal(tc.until) {
					t.Errorf("lease of %s until %v, want %v", tc.id, got, tc.until)
				}
			}
			var lastSeen time.Time
			for _, w := range workers(t, b) {
				if w.ID == "w1" {
					lastSeen = w.LastSeen
				}
			}
			if !lastSeen.Equal(now) {
				t.Errorf("lastSeen of w1 = %v, want %v", lastSeen, now)
			}
		})
	}
}

func TestHeartbeatErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	wantError(t, b, taskwire.MethodSystemHeartbeat, params{"instanceId": "ghost"}, notRegistered("ghost"))
	wantError(t, b, taskwire.MethodSystemHeartbeat, params{"workerId": "ghost"}, notRegistered("ghost"))
	wantInvalid(t, b, taskwire.MethodSystemHeartbeat, params{}, "workerId")
	wantInvalid(t, b, taskwire.MethodSystemHeartbeat, params{"instanceId": "w1", "workerId": "w2"}, "workerId")
	wantInvalid(t, b, taskwire.MethodSystemHeartbeat, params{"id": "w1"}, "id")
	if ws := workers(t, b); len(ws) != 1 || ws[0].ID != "w1" {
		t.Errorf("workers %+v, want w1 alone", ws)
	}
}

func TestUnregister(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"id", "workerId"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			b, clk := withFakeClock(t)
			register(t, b, "w1")
			register(t, b, "w2")
			running := []*taskwire.Task{createTask(t, b, nil), createTask(t, b, nil)}
			done := createTask(t, b, nil)
			claim(t, b, "w1", params{"maxTasks": 3})
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": done.ID, "workerId": "w1", "result": 1})
			reserved := createTask(t, b, nil)
			call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": reserved.ID, "workerId": "w1"})
			final := getTask(t, b, done.ID)
			clk.Advance(time.Second)

			raw := call[json.RawMessage](t, b, taskwire.MethodSystemUnregister, params{key: "w1"})
			if diff := cmp.Diff(map[string]any{"unregistered": true, "requeued": float64(2)}, rawObject(t, raw)); diff != "" {
				t.Errorf("system.unregister (-want +got):\n%s", diff)
			}
			// Its in-progress tasks are back in the queue at once, attempt kept.
			for _, task := range running {
				got := getTask(t, b, task.ID)
				if got.Status != taskwire.StatusPending || got.AssignedTo != "" || got.Attempt != 1 || !got.LeaseExpiresAt.IsZero() {
					t.Errorf("task %s after unregister: %s %q attempt %d lease %v", task.ID, got.Status, got.AssignedTo, got.Attempt, got.LeaseExpiresAt)
				}
			}
			// Its reservation is cleared; its completed task keeps its outcome.
			if got := getTask(t, b, reserved.ID); got.AssignedTo != "" || got.Status != taskwire.StatusPending {
				t.Errorf("reserved task after unregister: %s %q", got.Status, got.AssignedTo)
			}
			wantUnchanged(t, b, final)
			if ws := workers(t, b); len(ws) != 1 || ws[0].ID != "w2" {
				t.Errorf("workers after unregister: %+v, want w2 alone", ws)
			}
			wantError(t, b, taskwire.MethodSystemHeartbeat, params{"workerId": "w1"}, notRegistered("w1"))
			// Another worker takes the requeued tasks.
			got := claim(t, b, "w2", params{"maxTasks": 10})
			want := []string{running[0].ID, running[1].ID, reserved.ID}
			gotIDs := ids(got.Tasks)
			slices.Sort(gotIDs)
			if diff := cmp.Diff(want, gotIDs); diff != "" {
				t.Errorf("w2 claim after unregister (-want +got):\n%s", diff)
			}
			// Unregistering again: the worker is not registered.
			wantError(t, b, taskwire.MethodSystemUnregister, params{key: "w1"}, notRegistered("w1"))
		})
	}
}

// TestUnregisterLastAttempt: a task with maxAttempts 1 whose worker
// unregisters fails, instead of going back for a second claim.
func TestUnregisterLastAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "u1")
	register(t, b, "u2")
	task := createTask(t, b, params{"maxAttempts": 1})
	claimOne(t, b, "u1")
	raw := call[json.RawMessage](t, b, taskwire.MethodSystemUnregister, params{"workerId": "u1"})
	if diff := cmp.Diff(map[string]any{"unregistered": true, "requeued": float64(0)}, rawObject(t, raw)); diff != "" {
		t.Errorf("system.unregister (-want +got):\n%s", diff)
	}
	got := getTask(t, b, task.ID)
	if got.Status != taskwire.StatusFailed || got.Error != "worker unregistered after 1 attempts" || got.Attempt != 1 {
		t.Errorf("task after unregister: %s, error %q, attempt %d; want failed, %q, 1",
			got.Status, got.Error, got.Attempt, "worker unregistered after 1 attempts")
	}
	if r := claim(t, b, "u2", nil); r.Claimed {
		t.Errorf("u2 claimed %s as attempt %d; its maxAttempts is 1", r.TaskID, r.Task.Attempt)
	}
}

func TestUnregisterErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	wantError(t, b, taskwire.MethodSystemUnregister, params{"id": "ghost"}, notRegistered("ghost"))
	wantInvalid(t, b, taskwire.MethodSystemUnregister, params{}, "id")
	wantInvalid(t, b, taskwire.MethodSystemUnregister, params{"id": "a", "workerId": "b"}, "workerId")
}

func TestWorkers(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	raw := call[json.RawMessage](t, b, taskwire.MethodSystemWorkers, params{})
	if diff := cmp.Diff(map[string]any{"workers": []any{}}, rawObject(t, raw)); diff != "" {
		t.Errorf("no workers (-want +got):\n%s", diff)
	}
	register(t, b, "zed", "q1")
	clk.Advance(time.Second)
	register(t, b, "amy")
	a := createTask(t, b, nil)
	bb := createTask(t, b, nil)
	createTask(t, b, nil)
	claim(t, b, "amy", params{"maxTasks": 2})

	want := []taskwire.Worker{
		{ID: "amy", Status: taskwire.WorkerOnline, RegisteredAt: t0.Add(time.Second), LastSeen: t0.Add(time.Second),
			Tasks: []string{a.ID, bb.ID}},
		{ID: "zed", Status: taskwire.WorkerOnline, Queues: []string{"q1"}, RegisteredAt: t0, LastSeen: t0},
	}
	if diff := cmp.Diff(jsonValue(t, want), jsonValue(t, workers(t, b))); diff != "" {
		t.Errorf("system.workers (-want +got):\n%s", diff)
	}
	wantInvalid(t, b, taskwire.MethodSystemWorkers, params{"status": "online"}, "status")
}

// A dead worker's tasks are back in the queue within the worker timeout
// plus one sweep interval, however many it held (SPEC section 7.3): a
// sweep that stops at the store's bound (200 tasks at a time in SQLite)
// goes on at once instead of leaving the rest for the next interval.
func TestSweepReturnsEveryTaskOfADeadWorker(t *testing.T) {
	t.Parallel()
	const n = 2500
	b, clk := withFakeClock(t, func(c *Config) {
		c.SweepInterval = -1 // no sweeper: the test sweeps
		c.WorkerTimeout = 10 * time.Second
	})
	register(t, b, "w1")
	ctx := context.Background()
	var creates, claims []rpctest.Call
	for range n {
		creates = append(creates, rpctest.Call{Method: taskwire.MethodTaskCreate, Params: params{"text": "t"}})
	}
	for range n / 10 {
		claims = append(claims, rpctest.Call{Method: taskwire.MethodTaskClaim, Params: params{"workerId": "w1", "maxTasks": 10}})
	}
	// Creates first, then claims: the calls of one batch run in any order.
	for _, calls := range [][]rpctest.Call{creates[:1000], creates[1000:2000], creates[2000:], claims} {
		rs, err := b.cl.Batch(ctx, calls)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Error != nil {
				t.Fatalf("%s: %v", calls[0].Method, r.Error)
			}
		}
	}
	if got := listTasks(t, b, params{"status": "in_progress", "limit": 1}).TotalCount; got != n {
		t.Fatalf("%d tasks in progress, want %d", got, n)
	}
	clk.Advance(11 * time.Second)
	if _, err := b.srv.Service().Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := listTasks(t, b, params{"status": "pending", "limit": 1}).TotalCount; got != n {
		t.Errorf("after one sweep, %d of the dead worker's %d tasks are back in the queue", got, n)
	}
}

package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

func TestClaimOrder(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	register(t, b, "w1")
	// Created one millisecond apart; claimed by priority, then oldest first.
	var ids []string
	for _, prio := range []int{10, 90, 50, 90, 10, 100, 0} {
		ids = append(ids, createTask(t, b, params{"priority": prio}).ID)
		clk.Advance(time.Millisecond)
	}
	want := []string{ids[5], ids[1], ids[3], ids[2], ids[0], ids[4], ids[6]}
	var got []string
	for range want {
		got = append(got, claimOne(t, b, "w1").ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claim order (-want +got):\n%s", diff)
	}
	if r := claim(t, b, "w1", nil); r.Claimed {
		t.Errorf("claimed %s from an empty queue", r.TaskID)
	}
}

func TestClaimOrderWithinOneMillisecond(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t) // every task created at the same instant
	register(t, b, "w1")
	var want []string
	for i := 0; i < 20; i++ {
		want = append(want, createTask(t, b, nil).ID)
	}
	var got []string
	for _, n := range []int{3, 10, 7} {
		for _, task := range claim(t, b, "w1", params{"maxTasks": n}).Tasks {
			got = append(got, task.ID)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FIFO within one priority (-want +got):\n%s", diff)
	}
}

func TestClaimResult(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	register(t, b, "w1")
	a := createTask(t, b, params{"text": "a", "leaseMs": 60_000})
	bb := createTask(t, b, params{"text": "b"})
	c := createTask(t, b, params{"text": "c"})
	clk.Advance(time.Second)
	now := t0.Add(time.Second)

	got := claim(t, b, "w1", params{"maxTasks": 2})
	inProgress := func(task *taskwire.Task) *taskwire.Task {
		c := *task
		c.Status, c.AssignedTo, c.Attempt = taskwire.StatusInProgress, "w1", 1
		c.LeaseExpiresAt = now.Add(time.Duration(c.LeaseMs) * time.Millisecond)
		c.UpdatedAt = now
		return &c
	}
	want := taskwire.ClaimResult{Claimed: true, TaskID: a.ID, Task: inProgress(a),
		Tasks: []*taskwire.Task{inProgress(a), inProgress(bb)}}
	if diff := cmp.Diff(want, got, jsonEq); diff != "" {
		t.Errorf("claim maxTasks 2 (-want +got):\n%s", diff)
	}
	for _, task := range want.Tasks {
		wantUnchanged(t, b, task) // the stored tasks are as claimed
	}
	// maxTasks larger than what is ready takes what there is.
	got = claim(t, b, "w1", params{"maxTasks": 10})
	if len(got.Tasks) != 1 || got.TaskID != c.ID {
		t.Errorf("claim maxTasks 10 of 1 ready: %+v", got)
	}
	// Nothing ready: exactly {"claimed": false}.
	raw := call[json.RawMessage](t, b, taskwire.MethodTaskClaim, params{"workerId": "w1"})
	if diff := cmp.Diff(map[string]any{"claimed": false}, rawObject(t, raw)); diff != "" {
		t.Errorf("empty claim (-want +got):\n%s", diff)
	}
}

func TestClaimErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params params
		want   *taskwire.Error // nil: check field instead
		field  string
	}{
		// The worker must be registered: the exact message and data.
		{"unregistered worker", params{"workerId": "ghost"}, notRegistered("ghost"), ""},
		{"workerId missing", params{}, nil, "workerId"},
		{"workerId empty", params{"workerId": ""}, nil, "workerId"},
		{"workerId a number", params{"workerId": 7}, nil, "workerId"},
		// maxTasks: 1..10.
		{"maxTasks 0", params{"workerId": "w1", "maxTasks": 0}, nil, "maxTasks"},
		{"maxTasks 11", params{"workerId": "w1", "maxTasks": 11}, nil, "maxTasks"},
		{"maxTasks a string", params{"workerId": "w1", "maxTasks": "2"}, nil, "maxTasks"},
		// waitMs: 0..30000.
		{"waitMs over 30000", params{"workerId": "w1", "waitMs": 30_001}, nil, "waitMs"},
		{"waitMs negative", params{"workerId": "w1", "waitMs": -1}, nil, "waitMs"},
		// queues: a list of queue names.
		{"queues a string", params{"workerId": "w1", "queues": "default"}, nil, "queues"},
		{"queue name invalid", params{"workerId": "w1", "queues": []string{"Bad Queue"}}, nil, "queues"},
		{"unknown param", params{"workerId": "w1", "limit": 3}, nil, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			register(t, b, "w1")
			task := createTask(t, b, nil)
			if tt.want != nil {
				wantError(t, b, taskwire.MethodTaskClaim, tt.params, tt.want)
			} else {
				wantInvalid(t, b, taskwire.MethodTaskClaim, tt.params, tt.field)
			}
			wantUnchanged(t, b, task)
		})
	}
}

func TestClaimUnregisteredAfterUnregister(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	call[taskwire.UnregisterResult](t, b, taskwire.MethodSystemUnregister, params{"id": "w1"})
	task := createTask(t, b, nil)
	wantError(t, b, taskwire.MethodTaskClaim, params{"workerId": "w1"}, notRegistered("w1"))
	wantUnchanged(t, b, task)
}

func TestClaimOrderAcrossQueues(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	register(t, b, "w1", "a", "b")
	// Priority first, then age, whatever queue a task is in.
	var ids []string
	for _, p := range []params{
		{"queue": "b", "priority": 5}, {"queue": "a", "priority": 5}, {"queue": "b", "priority": 5},
		{"queue": "a", "priority": 6}, {"queue": "a", "priority": 5},
	} {
		ids = append(ids, createTask(t, b, p).ID)
		clk.Advance(time.Millisecond)
	}
	want := []string{ids[3], ids[0], ids[1], ids[2], ids[4]}
	var got []string
	for _, n := range []int{2, 1, 10} {
		for _, task := range claim(t, b, "w1", params{"maxTasks": n}).Tasks {
			got = append(got, task.ID)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claim order across queues (-want +got):\n%s", diff)
	}
}

func TestClaimQueues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inA := createTask(t, b, params{"queue": "a", "priority": 10})
	inB := createTask(t, b, params{"queue": "b", "priority": 20})
	inDefault := createTask(t, b, params{"priority": 90})
	inC := createTask(t, b, params{"queue": "c", "priority": 30})
	register(t, b, "wb", "b")    // its registered queues by default
	register(t, b, "wdef")       // no queues: the default queue
	register(t, b, "wany", "zz") // given queues win over registered ones

	tests := []struct {
		worker string
		p      params
		want   string
	}{
		// Registered queues apply when the claim names none.
		{"wb", nil, inB.ID},
		// A worker that registered no queues claims from "default".
		{"wdef", nil, inDefault.ID},
		// Queues named in the claim: the best task across them.
		{"wany", params{"queues": []string{"a", "c"}}, inC.ID},
		{"wany", params{"queues": []string{"a", "c"}}, inA.ID},
	}
	for _, tt := range tests {
		if got := claim(t, b, tt.worker, tt.p); !got.Claimed || got.TaskID != tt.want {
			t.Errorf("%s claim %v = %v %s, want %s", tt.worker, tt.p, got.Claimed, got.TaskID, tt.want)
		}
	}
	// Every queue is empty now for these claims.
	for _, w := range []string{"wb", "wdef", "wany"} {
		if got := claim(t, b, w, params{"maxTasks": 10}); got.Claimed {
			t.Errorf("%s claimed %s from empty queues", w, got.TaskID)
		}
	}
}

func TestClaimReserved(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	register(t, b, "w2")
	top := createTask(t, b, params{"priority": 100})
	reserved := createTask(t, b, params{"priority": 0})
	reservedOther := createTask(t, b, params{"priority": 0, "queue": "elsewhere"})
	call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": reserved.ID, "workerId": "w1"})
	call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": reservedOther.ID, "workerId": "w1"})

	// Another worker never gets a task reserved for w1.
	got := claim(t, b, "w2", params{"maxTasks": 10})
	if len(got.Tasks) != 1 || got.TaskID != top.ID {
		t.Fatalf("w2 claimed %v, want only %s", ids(got.Tasks), top.ID)
	}
	if r := claim(t, b, "w2", params{"maxTasks": 10, "queues": []string{"default", "elsewhere"}}); r.Claimed {
		t.Fatalf("w2 claimed reserved %v", ids(r.Tasks))
	}
	// The worker gets its reservations first, from any queue, before a
	// better unreserved task.
	better := createTask(t, b, params{"priority": 100})
	got = claim(t, b, "w1", params{"maxTasks": 2})
	if diff := cmp.Diff([]string{reserved.ID, reservedOther.ID}, ids(got.Tasks)); diff != "" {
		t.Errorf("w1 claim (-want +got):\n%s", diff)
	}
	if got := claimOne(t, b, "w1"); got.ID != better.ID {
		t.Errorf("w1 then claimed %s, want %s", got.ID, better.ID)
	}
}

func TestClaimLongPoll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")

	type answer struct {
		r   taskwire.ClaimResult
		err error
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		var r taskwire.ClaimResult
		err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim,
			params{"workerId": "w1", "waitMs": 20_000}, &r)
		done <- answer{r, err}
	}()
	time.Sleep(200 * time.Millisecond) // let the claim start waiting
	select {
	case a := <-done:
		t.Fatalf("claim with waitMs returned before any task existed: %+v %v", a.r, a.err)
	default:
	}
	task := createTask(t, b, nil)
	select {
	case a := <-done:
		if a.err != nil {
			t.Fatal(a.err)
		}
		if !a.r.Claimed || a.r.TaskID != task.ID {
			t.Errorf("woken claim = %+v, want %s", a.r, task.ID)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("claim still waiting 2s after a task was created (%v since it started)", time.Since(start))
	}
}

func TestClaimLongPollTimesOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	createTask(t, b, params{"queue": "other"}) // ready, but not in w1's queues
	start := time.Now()
	raw := call[json.RawMessage](t, b, taskwire.MethodTaskClaim, params{"workerId": "w1", "waitMs": 300})
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		t.Errorf("claim with waitMs 300 returned after %v, want it to wait", elapsed)
	}
	if diff := cmp.Diff(map[string]any{"claimed": false}, rawObject(t, raw)); diff != "" {
		t.Errorf("claim at the end of the wait (-want +got):\n%s", diff)
	}
}

func TestClaimLongPollWakesOnUnassign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	register(t, b, "w2")
	task := createTask(t, b, nil)
	claimOne(t, b, "w1")

	done := make(chan taskwire.ClaimResult, 1)
	go func() {
		var r taskwire.ClaimResult
		if err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim,
			params{"workerId": "w2", "waitMs": 20_000}, &r); err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(200 * time.Millisecond)
	call[taskwire.UnassignResult](t, b, taskwire.MethodTaskUnassign, params{"taskId": task.ID})
	select {
	case r := <-done:
		if r.TaskID != task.ID {
			t.Errorf("woken claim = %+v, want %s", r, task.ID)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("claim still waiting 2s after the task went back to the queue")
	}
}

func ids(tasks []*taskwire.Task) []string {
	out := []string{}
	for _, t := range tasks {
		out = append(out, t.ID)
	}
	return out
}

func TestClaimLongPollDelayedTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	task := createTask(t, b, params{"delayMs": 300})
	start := time.Now()
	// Nothing is ready when the claim starts; the task comes due during the
	// wait.
	r := claim(t, b, "w1", params{"waitMs": 20_000})
	if !r.Claimed || r.TaskID != task.ID {
		t.Fatalf("claim = %+v, want %s once due", r, task.ID)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second+300*time.Millisecond {
		t.Errorf("a task due after 300 ms was claimed after %v", elapsed)
	}
}

func TestClaimLongPollManyWaiters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const waiters = 5
	results := make(chan taskwire.ClaimResult, waiters)
	for i := 0; i < waiters; i++ {
		worker := "w" + string(rune('a'+i))
		register(t, b, worker)
		go func() {
			var r taskwire.ClaimResult
			if err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim,
				params{"workerId": worker, "waitMs": 1500}, &r); err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	time.Sleep(200 * time.Millisecond)
	task := createTask(t, b, nil)
	// One waiter gets the task; the others wait out their time with nothing.
	var got []string
	for i := 0; i < waiters; i++ {
		if r := <-results; r.Claimed {
			got = append(got, r.TaskID)
		}
	}
	if diff := cmp.Diff([]string{task.ID}, got); diff != "" {
		t.Errorf("claims of %d waiters for one task (-want +got):\n%s", waiters, diff)
	}
}

package server

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
)

// TestLongPollWakeUp: a task created while a worker waits in a long-poll
// claim (waitMs 10 s) is handed to that worker by the waiting claim, long
// before its wait would have run out: the create wakes the claim. How
// fast it does is measured by BenchmarkLongPollWakeUp, not asserted here.
func TestLongPollWakeUp(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "sleeper")
	for i := range 5 {
		lat := wakeUp(t, b, "sleeper")
		t.Logf("round %d: create -> waiting claim returns it in %s", i, lat)
	}
}

// BenchmarkLongPollWakeUp reports the time from sending a create to the
// return of the long-poll claim that was waiting for it: p50 and p90 in ms.
func BenchmarkLongPollWakeUp(b *testing.B) {
	bd := setup(b)
	register(b, bd, "sleeper")
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		lat = append(lat, wakeUp(b, bd, "sleeper"))
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*9/10]), "p90-ms")
}

// wakeUp starts a long-poll claim for worker, creates a task once the
// claim waits, and returns how long after the create the claim returned
// that task. It fails when the claim returns anything else, or is not
// woken within 5 s (half its wait).
func wakeUp(t testing.TB, b *bundle, worker string) time.Duration {
	t.Helper()
	got := make(chan time.Time, 1)
	var r taskwire.ClaimResult
	go func() {
		err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim,
			params{"workerId": worker, "waitMs": 10_000}, &r)
		if err != nil {
			t.Error(err)
		}
		got <- time.Now()
	}()
	time.Sleep(50 * time.Millisecond) // the claim is waiting by now
	sent := time.Now()
	task := createTask(t, b, nil)
	select {
	case at := <-got:
		if !r.Claimed || r.TaskID != task.ID {
			t.Fatalf("woken claim = %+v, want %s", r, task.ID)
		}
		return at.Sub(sent)
	case <-time.After(5 * time.Second):
		t.Fatalf("claim not woken 5s after the create")
	}
	return 0
}

// TestLongPollEndsWhenClientLeaves: a client that disconnects during a
// long-poll claim ends its wait, so a task created afterwards is not
// claimed for a worker that is no longer listening.
func TestLongPollEndsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "leaver")
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() {
		returned <- b.cl.Call(ctx, taskwire.MethodTaskClaim, params{"workerId": "leaver", "waitMs": 20_000}, nil)
	}()
	time.Sleep(100 * time.Millisecond) // the claim is waiting
	cancel()
	if err := <-returned; err == nil {
		t.Fatal("the cancelled call reported success")
	}
	time.Sleep(200 * time.Millisecond) // the server notices the closed connection
	task := createTask(t, b, nil)
	time.Sleep(300 * time.Millisecond) // a wait still running would claim it now
	if got := getTask(t, b, task.ID); got.Status != taskwire.StatusPending || got.AssignedTo != "" {
		t.Errorf("task created after the client left: status %s, assigned to %q; want pending, unassigned",
			got.Status, got.AssignedTo)
	}
}

// TestLongPollRenewsNoLease: a worker waiting in a long poll stays online
// (each try of the claim is a sign of life), but the leases of the tasks
// it holds run out as without the poll: only a heartbeat or an update
// renews them. Its task, leased for 1 s, is requeued when the lease
// expires during a 4 s poll, which then hands it out again as attempt 2.
func TestLongPollRenewsNoLease(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) {
		c.WorkerTimeout = 600 * time.Millisecond // the poll shows life every 200 ms
		c.SweepInterval = 50 * time.Millisecond
	})
	register(t, b, "holder")
	task := createTask(t, b, params{"leaseMs": 1000})
	if got := claimOne(t, b, "holder"); got.ID != task.ID {
		t.Fatalf("claimed %s, want %s", got.ID, task.ID)
	}
	r := claim(t, b, "holder", params{"waitMs": 4000})
	if !r.Claimed || r.TaskID != task.ID || r.Task.Attempt != 2 {
		t.Fatalf("long poll while holding a task leased for 1s = %+v; want %s again as attempt 2 (lease expired, requeued)",
			r, task.ID)
	}
	for _, w := range call[taskwire.WorkersResult](t, b, taskwire.MethodSystemWorkers, params{}).Workers {
		if w.ID == "holder" && w.Status != taskwire.WorkerOnline {
			t.Fatalf("worker waiting in a long poll went %s; want online", w.Status)
		}
	}
}

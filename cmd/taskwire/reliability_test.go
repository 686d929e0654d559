package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// Lifecycle settings of the server processes of these tests: a worker is
// declared dead after 2 s of silence and the sweeper runs every 500 ms.
const (
	testWorkerTimeout = 2 * time.Second
	testSweepInterval = 500 * time.Millisecond
)

func startLifecycleServer(t *testing.T) (*child, *rpctest.Client) {
	srv := startChild(t, "--data", t.TempDir(), "--no-rate-limit",
		"--worker-timeout", testWorkerTimeout.String(), "--sweep-interval", testSweepInterval.String())
	return srv, rpctest.New(srv.URL)
}

// TestKilledWorkerTasksComeBack kills a worker process (SIGKILL) while it
// holds a task: the task is claimable again within the worker timeout plus
// one sweep interval.
func TestKilledWorkerTasksComeBack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server and worker processes")
	}
	srv, cl := startLifecycleServer(t)
	ctx := context.Background()
	var task taskwire.Task
	if err := cl.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "held by a worker that dies"}, &task); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, srv.URL, "doomed", time.Minute)
	w.expectLine(t, "claimed "+task.ID, 10*time.Second)
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "heir"}, nil); err != nil {
		t.Fatal(err)
	}
	var claim taskwire.ClaimResult
	if err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "heir", "waitMs": 10000}, &claim); err != nil {
		t.Fatal(err)
	}
	back := time.Since(killed)
	if !claim.Claimed || claim.TaskID != task.ID || claim.Task.Attempt != 2 {
		t.Fatalf("after the kill: claim %+v, want %s at attempt 2", claim, task.ID)
	}
	bound := testWorkerTimeout + testSweepInterval
	t.Logf("task claimable again %s after SIGKILL of its worker (bound: worker timeout %s + sweep interval %s)",
		back.Round(time.Millisecond), testWorkerTimeout, testSweepInterval)
	if back > bound+time.Second { // the margin covers process scheduling on a loaded machine only
		t.Errorf("task came back after %s, past worker timeout + one sweep interval (%s)", back, bound)
	}
}

// TestStoppedWorkerIsFencedOut stops a worker with SIGSTOP past its lease;
// another worker takes the task over and completes it; the first is
// resumed and its completion is refused, the other's result kept.
func TestStoppedWorkerIsFencedOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server and worker processes")
	}
	srv, cl := startLifecycleServer(t)
	ctx := context.Background()
	var task taskwire.Task
	if err := cl.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "contested", "leaseMs": 1000}, &task); err != nil {
		t.Fatal(err)
	}
	zombie := startWorker(t, srv.URL, "zombie", 500*time.Millisecond)
	zombie.expectLine(t, "claimed "+task.ID+" 1", 10*time.Second)
	if err := zombie.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "rescuer"}, nil); err != nil {
		t.Fatal(err)
	}
	var claim taskwire.ClaimResult
	if err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "rescuer", "waitMs": 10000}, &claim); err != nil {
		t.Fatal(err)
	}
	if !claim.Claimed || claim.TaskID != task.ID || claim.Task.Attempt != 2 {
		t.Fatalf("rescuer claim %+v, want %s at attempt 2", claim, task.ID)
	}
	if err := cl.Call(ctx, taskwire.MethodTaskComplete, map[string]any{
		"id": task.ID, "workerId": "rescuer", "attempt": 2, "result": map[string]string{"echo": "rescued"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := zombie.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	refused := zombie.expectLine(t, "refused "+task.ID, 10*time.Second)
	if got := strings.Join(refused[2:], " "); got != "1 -32003" {
		t.Errorf("zombie's completion refused with %q, want attempt 1 and code -32003", got)
	}
	var final taskwire.Task
	if err := cl.Call(ctx, taskwire.MethodTaskGet, map[string]any{"id": task.ID}, &final); err != nil {
		t.Fatal(err)
	}
	if final.Status != taskwire.StatusCompleted || decodeEcho(final.Result) != "rescued" || final.AssignedTo != "rescuer" {
		t.Errorf("final task: status %s, result %s, assignedTo %s; want the rescuer's completion kept",
			final.Status, final.Result, final.AssignedTo)
	}
	t.Logf("zombie resumed after SIGSTOP: completion refused (%s); rescuer's result kept", strings.Join(refused, " "))
}

// TestTenThousandTasksWithKilledWorkers runs 10,000 tasks with unique
// payloads through 8 worker processes, kills 3 of them with SIGKILL in the
// middle of the run, and checks that every task is completed with its own
// payload echoed back and that no completion was accepted twice.
func TestTenThousandTasksWithKilledWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server and worker processes")
	}
	const tasks, workers, killed = 10_000, 8, 3
	srv, cl := startLifecycleServer(t)
	ctx := context.Background()
	texts := map[string]string{}
	for i := 0; i < tasks; i += 500 {
		calls := make([]rpctest.Call, 500)
		for j := range calls {
			calls[j] = rpctest.Call{Method: taskwire.MethodTaskCreate,
				Params: map[string]any{"text": fmt.Sprintf("payload %05d", i+j)}}
		}
		resps, err := cl.Batch(ctx, calls)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resps {
			var task taskwire.Task
			if r.Error != nil || unmarshalTask(r.Result, &task) != nil {
				t.Fatalf("create: %v", r.Error)
			}
			texts[task.ID] = task.Text
		}
	}
	start := time.Now()
	procs := make([]*workerProc, workers)
	for i := range procs {
		procs[i] = startWorker(t, srv.URL, fmt.Sprintf("fleet-%d", i), 2*time.Millisecond, "TASKWIRE_TEST_IDLE_EXIT=4s")
	}
	// Read every worker's report; kill the first three, each after some
	// work, right after it claimed a task.
	var mu sync.Mutex
	completedBy := map[string][]string{} // task id -> workers whose completion was accepted
	refusals := 0
	var wg sync.WaitGroup
	for i, w := range procs {
		wg.Add(1)
		go func(i int, w *workerProc) {
			defer wg.Done()
			done := 0
			for l := range w.lines {
				f := strings.Fields(l)
				mu.Lock()
				switch f[0] {
				case "completed":
					completedBy[f[1]] = append(completedBy[f[1]], fmt.Sprint(i))
					done++
				case "refused":
					refusals++
				}
				mu.Unlock()
				if i < killed && done >= 300*(i+1) && f[0] == "claimed" {
					_ = w.cmd.Process.Kill() // it holds the task it just claimed
				}
			}
		}(i, w)
	}
	wg.Wait()
	elapsed := time.Since(start)

	lost, twice, wrong, retried := 0, 0, 0, 0
	for offset := 0; offset < tasks; offset += 1000 {
		var page taskwire.ListResult
		if err := cl.Call(ctx, taskwire.MethodTaskList, map[string]any{"limit": 1000, "offset": offset, "order": "asc"}, &page); err != nil {
			t.Fatal(err)
		}
		if page.TotalCount != tasks {
			t.Fatalf("the server holds %d tasks, want %d", page.TotalCount, tasks)
		}
		for _, task := range page.Tasks {
			switch {
			case task.Status != taskwire.StatusCompleted:
				lost++
				t.Errorf("task %s ended %s", task.ID, task.Status)
			case decodeEcho(task.Result) != texts[task.ID]:
				wrong++
				t.Errorf("task %s result %s, want the echo of %q", task.ID, task.Result, texts[task.ID])
			}
			if task.Attempt > 1 {
				retried++
			}
			if n := len(completedBy[task.ID]); n > 1 {
				twice++
				t.Errorf("task %s: completion accepted %d times (workers %v)", task.ID, n, completedBy[task.ID])
			}
		}
	}
	t.Logf("%d tasks, %d workers (%d killed with SIGKILL mid-run) in %s: %d not completed, %d wrong results, %d completions accepted twice, %d tasks run again after a death, %d stale completions refused",
		tasks, workers, killed, elapsed.Round(time.Millisecond), lost, wrong, twice, retried, refusals)
	if retried == 0 {
		t.Error("no task was run again: the kills did not land mid-task, so the test proved nothing")
	}
}

func unmarshalTask(raw []byte, t *taskwire.Task) error { return t.UnmarshalJSON(raw) }

package server

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// TestClaimRace has 40 workers claim 5,000 tasks over HTTP at once, each
// asking for 1 to 10 tasks per call: every task is handed out exactly once,
// and all of them are.
func TestClaimRace(t *testing.T) {
	t.Parallel()
	const (
		tasks   = 5000
		workers = 40
	)
	b := setup(t)
	// Created in batches of 1,000; priorities mixed so that claims race
	// for the same head of the queue.
	want := map[string]bool{}
	for n := 0; n < tasks; n += 1000 {
		calls := make([]rpctest.Call, 1000)
		for i := range calls {
			calls[i] = rpctest.Call{Method: taskwire.MethodTaskCreate,
				Params: params{"text": fmt.Sprint("race ", n+i), "priority": (n + i) % 7}}
		}
		for _, r := range mustSend(t, b.cl, calls) {
			var task taskwire.Task
			if err := unmarshal(r.Result, &task); err != nil {
				t.Fatal(err)
			}
			want[task.ID] = true
		}
	}
	if len(want) != tasks {
		t.Fatalf("%d distinct tasks created, want %d", len(want), tasks)
	}

	var (
		mu    sync.Mutex
		owner = map[string]string{} // task id -> worker
		dups  []string
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		worker := fmt.Sprintf("racer-%02d", w)
		register(t, b, worker)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				var r taskwire.ClaimResult
				maxTasks := 1 + (w+i)%taskwire.MaxClaimTasks
				if err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim,
					params{"workerId": worker, "maxTasks": maxTasks}, &r); err != nil {
					t.Errorf("%s: claim: %v", worker, err)
					return
				}
				if !r.Claimed {
					return // the queue is empty
				}
				if len(r.Tasks) == 0 || len(r.Tasks) > maxTasks || r.TaskID != r.Tasks[0].ID {
					t.Errorf("%s: claim of %d gave %d tasks, taskId %s", worker, maxTasks, len(r.Tasks), r.TaskID)
				}
				mu.Lock()
				for _, task := range r.Tasks {
					if task.Status != taskwire.StatusInProgress || task.AssignedTo != worker || task.Attempt != 1 {
						t.Errorf("%s claimed %s: status %s assignedTo %s attempt %d",
							worker, task.ID, task.Status, task.AssignedTo, task.Attempt)
					}
					if prev, ok := owner[task.ID]; ok {
						dups = append(dups, fmt.Sprintf("%s to %s and %s", task.ID, prev, worker))
					}
					owner[task.ID] = worker
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()

	if len(dups) > 0 {
		t.Errorf("%d tasks handed out twice, e.g. %s", len(dups), dups[0])
	}
	missing := 0
	for id := range want {
		if owner[id] == "" {
			missing++
		}
	}
	if missing > 0 || len(owner) != tasks {
		t.Errorf("%d tasks handed out, %d never: want all %d exactly once", len(owner), missing, tasks)
	}
	// The store agrees: every task in progress, with the worker that got it.
	m := call[taskwire.MetricsResult](t, b, taskwire.MethodSystemMetrics, params{})
	if m.ByStatus[taskwire.StatusInProgress] != tasks || m.ByStatus[taskwire.StatusPending] != 0 {
		t.Errorf("after the race: %v, want %d in_progress", m.ByStatus, tasks)
	}
	perWorker := map[string]int{}
	for _, w := range owner {
		perWorker[w]++
	}
	for _, w := range call[taskwire.WorkersResult](t, b, taskwire.MethodSystemWorkers, params{}).Workers {
		if len(w.Tasks) != perWorker[w.ID] {
			t.Errorf("system.workers: %s holds %d tasks, it claimed %d", w.ID, len(w.Tasks), perWorker[w.ID])
		}
		for _, id := range w.Tasks {
			if owner[id] != w.ID {
				t.Errorf("system.workers: %s holds %s, claimed by %q", w.ID, id, owner[id])
			}
		}
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// TestKillNineLosesNothingAcknowledged kills the server with SIGKILL in the
// middle of concurrent creates, claims and completions, restarts it on the
// same data directory, and checks that every create and every completion
// that was answered is there, result included.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dir := t.TempDir()
	srv := startChild(t, "--data", dir, "--no-rate-limit")
	cl := rpctest.New(srv.URL)

	var (
		mu        sync.Mutex
		created   = map[string]string{}          // id -> text
		completed = map[string]json.RawMessage{} // id -> result
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			worker := fmt.Sprintf("crash-w%d", w)
			if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": worker}, nil); err != nil {
				return
			}
			for i := 0; ctx.Err() == nil; i++ {
				text := fmt.Sprintf("job %d of %s", i, worker)
				var task taskwire.Task
				if err := cl.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": text}, &task); err != nil {
					return
				}
				mu.Lock()
				created[task.ID] = text
				mu.Unlock()
				var claim taskwire.ClaimResult
				if err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": worker}, &claim); err != nil {
					return
				}
				if !claim.Claimed {
					continue
				}
				result := json.RawMessage(fmt.Sprintf(`{"by":%q,"n":%d}`, worker, i))
				err := cl.Call(ctx, taskwire.MethodTaskComplete, map[string]any{
					"id": claim.TaskID, "workerId": worker, "result": result}, nil)
				if err != nil {
					return
				}
				mu.Lock()
				completed[claim.TaskID] = result
				mu.Unlock()
			}
		}(w)
	}
	// Let the load run, then kill the server in the middle of it.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(completed)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	cancel()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(completed) == 0 {
		t.Fatal("no completion was acknowledged before the kill: the test proved nothing")
	}
	after := startChild(t, "--data", dir, "--no-rate-limit")
	cl2 := rpctest.New(after.URL)
	lostCreates, lostCompletions := 0, 0
	for id, text := range created {
		var task taskwire.Task
		if err := cl2.Call(context.Background(), taskwire.MethodTaskGet, map[string]any{"id": id}, &task); err != nil {
			t.Errorf("acknowledged create %s lost: %v", id, err)
			lostCreates++
			continue
		}
		if task.Text != text {
			t.Errorf("task %s text = %q, want %q", id, task.Text, text)
		}
		if want, ok := completed[id]; ok {
			if task.Status != taskwire.StatusCompleted || string(task.Result) != string(want) {
				t.Errorf("acknowledged completion of %s lost: status %s result %s, want completed %s",
					id, task.Status, task.Result, want)
				lostCompletions++
			}
		}
	}
	t.Logf("killed with SIGKILL after %d acknowledged creates and %d acknowledged completions; lost after restart: %d creates, %d completions",
		len(created), len(completed), lostCreates, lostCompletions)
}

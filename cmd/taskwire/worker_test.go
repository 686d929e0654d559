package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// The test binary runs as a worker process when TASKWIRE_TEST_CHILD is
// "worker": it registers, heartbeats, claims with a long poll, "works" on
// each task for TASKWIRE_TEST_WORK_MS, completes it with {"echo": text}
// and the attempt it claimed, and reports every step on stdout:
//
//	claimed ID ATTEMPT
//	completed ID ATTEMPT
//	refused ID ATTEMPT CODE
//
// It exits 0 once no task came for TASKWIRE_TEST_IDLE_EXIT.
func workerMain() error {
	server, id := os.Getenv("TASKWIRE_TEST_SERVER"), os.Getenv("TASKWIRE_TEST_WORKER_ID")
	ms, _ := strconv.Atoi(os.Getenv("TASKWIRE_TEST_WORK_MS"))
	work := time.Duration(ms) * time.Millisecond
	idleExit, err := time.ParseDuration(os.Getenv("TASKWIRE_TEST_IDLE_EXIT"))
	if err != nil {
		idleExit = 5 * time.Second
	}
	ctx := context.Background()
	cl := rpctest.New(server)
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": id}, nil); err != nil {
		return err
	}
	go func() {
		for range time.Tick(300 * time.Millisecond) {
			_ = cl.Call(ctx, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": id}, nil)
		}
	}()
	idleSince := time.Now()
	for time.Since(idleSince) < idleExit {
		var claim taskwire.ClaimResult
		if err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": id, "waitMs": 500}, &claim); err != nil {
			return err
		}
		if !claim.Claimed {
			continue
		}
		for _, t := range claim.Tasks {
			fmt.Printf("claimed %s %d\n", t.ID, t.Attempt)
			time.Sleep(work)
			err := cl.Call(ctx, taskwire.MethodTaskComplete, map[string]any{
				"id": t.ID, "workerId": id, "attempt": t.Attempt, "result": map[string]string{"echo": t.Text}}, nil)
			var rpcErr *taskwire.Error
			switch {
			case err == nil:
				fmt.Printf("completed %s %d\n", t.ID, t.Attempt)
			case errors.As(err, &rpcErr):
				fmt.Printf("refused %s %d %d\n", t.ID, t.Attempt, rpcErr.Code)
			default:
				return err
			}
		}
		idleSince = time.Now()
	}
	return nil
}

// workerProc is a worker process started by a test.
type workerProc struct {
	cmd   *exec.Cmd
	lines chan string // its stdout, line by line; closed when it exits
}

// startWorker runs a worker process against url.
func startWorker(t *testing.T, url, id string, work time.Duration, env ...string) *workerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=worker", "TASKWIRE_TEST_SERVER="+url,
		"TASKWIRE_TEST_WORKER_ID="+id, fmt.Sprintf("TASKWIRE_TEST_WORK_MS=%d", work.Milliseconds()))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProc{cmd: cmd, lines: make(chan string, 100_000)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(w.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return w
}

// expectLine waits for the worker's next line starting with prefix.
func (w *workerProc) expectLine(t *testing.T, prefix string, within time.Duration) []string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("worker exited before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.Fields(l)
			}
		case <-deadline:
			t.Fatalf("worker printed no %q line within %s", prefix, within)
		}
	}
}

func decodeEcho(raw json.RawMessage) string {
	var v struct{ Echo string }
	_ = json.Unmarshal(raw, &v)
	return v.Echo
}

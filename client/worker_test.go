package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/service"
)

// createN creates n tasks named prefix-i and returns their ids.
func createN(t *testing.T, b *bundle, prefix string, n int, p taskwire.CreateParams) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		p.Text = fmt.Sprintf("%s-%d", prefix, i)
		ids[i] = create(t, b, p).ID
	}
	return ids
}

// runWorker runs w until it returns and reports Run's error.
func runWorker(cx context.Context, w *client.Worker) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- w.Run(cx) }()
	return errc
}

// wait waits for Run to return.
func wait(t *testing.T, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s")
	}
}

// completions counts the task.completed events of each task in the log.
func completions(t *testing.T, b *bundle) map[string]int {
	t.Helper()
	evs, err := b.srv.Service().Store().ReadEvents(ctx(t), "", 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range evs {
		if e.Type == taskwire.EventTaskCompleted {
			var p struct{ ID string }
			_ = json.Unmarshal(e.Payload, &p)
			n[p.ID]++
		}
	}
	return n
}

// TestWorkerRunsTasks: results complete tasks, errors fail them, a panic
// fails its task only, and the worker unregisters when idle.
func TestWorkerRunsTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := createN(t, b, "ok", 20, taskwire.CreateParams{})
	failing := create(t, b, taskwire.CreateParams{Text: "fail"}).ID
	panicking := create(t, b, taskwire.CreateParams{Text: "panic"}).ID

	var peak, now atomic.Int64
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", Concurrency: 4, ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) {
			n := now.Add(1)
			defer now.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			switch task.Text {
			case "fail":
				return nil, errors.New("disk full")
			case "panic":
				panic("boom")
			}
			return map[string]string{"upper": strings.ToUpper(task.Text)}, nil
		})
	wait(t, runWorker(ctx(t), w))

	for _, id := range ids {
		got := get(t, b, id)
		want := fmt.Sprintf(`{"upper":%q}`, strings.ToUpper(got.Text))
		if got.Status != taskwire.StatusCompleted || string(got.Result) != want {
			t.Fatalf("%s: %s %s, want completed %s", got.Text, got.Status, got.Result, want)
		}
	}
	if got := get(t, b, failing); got.Status != taskwire.StatusFailed || got.Error != "disk full" {
		t.Fatalf("failing task: %s %q", got.Status, got.Error)
	}
	if got := get(t, b, panicking); got.Status != taskwire.StatusFailed || got.Error != "panic: boom" {
		t.Fatalf("panicking task: %s %q", got.Status, got.Error)
	}
	if p := peak.Load(); p < 2 || p > 4 {
		t.Fatalf("peak concurrency %d, want 2..4", p)
	}
	ws, _ := b.c.Workers(ctx(t))
	if len(ws.Workers) != 0 {
		t.Fatalf("workers after Run: %+v, want unregistered", ws.Workers)
	}
}

// TestWorkerShutdownFinishesRunningTasks: on cancel the worker stops
// claiming, the running tasks finish within the grace period, the others
// stay in the queue; nothing is lost or completed twice.
func TestWorkerShutdownFinishesRunningTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := createN(t, b, "job", 12, taskwire.CreateParams{})
	started := make(chan string, 12)
	release := make(chan struct{})
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", Concurrency: 3, Grace: 20 * time.Second, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) {
			started <- task.ID
			<-release
			return "done", nil
		})
	cx, cancel := context.WithCancel(ctx(t))
	errc := runWorker(cx, w)
	running := map[string]bool{}
	for range 3 {
		running[<-started] = true
	}
	cancel()
	time.Sleep(200 * time.Millisecond)
	close(release)
	wait(t, errc)

	counts := completions(t, b)
	for _, id := range ids {
		got := get(t, b, id)
		switch {
		case running[id] && got.Status != taskwire.StatusCompleted:
			t.Errorf("%s was running: %s, want completed", got.Text, got.Status)
		case !running[id] && (got.Status != taskwire.StatusPending || got.AssignedTo != ""):
			t.Errorf("%s never started: %s assigned to %q, want pending and free", got.Text, got.Status, got.AssignedTo)
		}
		if counts[id] > 1 {
			t.Errorf("%s completed %d times", got.Text, counts[id])
		}
	}
	if len(counts) != 3 {
		t.Errorf("%d tasks completed, want the 3 that were running", len(counts))
	}
}

// TestWorkerShutdownHandsBackSlowTasks: tasks still running when the grace
// period ends go back to the queue, and a second worker completes every
// task exactly once.
func TestWorkerShutdownHandsBackSlowTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := createN(t, b, "slow", 6, taskwire.CreateParams{})
	started := make(chan struct{}, 6)
	var handedBack sync.WaitGroup
	slow := client.NewWorker(b.c, client.WorkerOptions{ID: "slow", Concurrency: 2, Grace: 300 * time.Millisecond, Logger: quietLogger()},
		func(ctx context.Context, task *taskwire.Task) (any, error) {
			handedBack.Add(1)
			defer handedBack.Done()
			started <- struct{}{}
			<-ctx.Done() // works until told to stop, then returns late
			time.Sleep(100 * time.Millisecond)
			return "too late", nil
		})
	cx, cancel := context.WithCancel(ctx(t))
	errc := runWorker(cx, slow)
	<-started
	<-started
	cancel()
	wait(t, errc)
	handedBack.Wait()
	time.Sleep(100 * time.Millisecond) // a late completion would have landed by now
	if n := len(completions(t, b)); n != 0 {
		t.Fatalf("%d tasks completed by a worker past its grace period", n)
	}
	for _, id := range ids {
		if got := get(t, b, id); got.Status != taskwire.StatusPending || got.AssignedTo != "" {
			t.Fatalf("%s: %s assigned to %q, want back in the queue", got.Text, got.Status, got.AssignedTo)
		}
	}

	fast := client.NewWorker(b.c, client.WorkerOptions{ID: "fast", Concurrency: 2, ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) { return task.Attempt, nil })
	wait(t, runWorker(ctx(t), fast))
	counts := completions(t, b)
	for _, id := range ids {
		got := get(t, b, id)
		if got.Status != taskwire.StatusCompleted || counts[id] != 1 {
			t.Errorf("%s: %s, completed %d times; want completed once", got.Text, got.Status, counts[id])
		}
	}
}

// TestWorkerEndGrace: EndGrace during the grace period hands the running
// tasks back at once, as when the grace period is over, and Run returns.
func TestWorkerEndGrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := createN(t, b, "stuck", 2, taskwire.CreateParams{})
	started := make(chan struct{}, 2)
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", Concurrency: 2, Grace: time.Hour, Logger: quietLogger()},
		func(ctx context.Context, task *taskwire.Task) (any, error) {
			started <- struct{}{}
			<-ctx.Done() // runs until told to stop
			return "too late", nil
		})
	cx, cancel := context.WithCancel(ctx(t))
	errc := runWorker(cx, w)
	<-started
	<-started
	cancel()
	w.EndGrace()
	wait(t, errc)
	if n := len(completions(t, b)); n != 0 {
		t.Fatalf("%d tasks completed, want none", n)
	}
	for _, id := range ids {
		if got := get(t, b, id); got.Status != taskwire.StatusPending || got.AssignedTo != "" {
			t.Fatalf("%s: %s assigned to %q, want back in the queue", got.Text, got.Status, got.AssignedTo)
		}
	}
}

// TestWorkerRenewsLeases: a task whose lease (1s) is much shorter than the
// heartbeat interval keeps its lease while its handler runs for 2.5s.
func TestWorkerRenewsLeases(t *testing.T) {
	t.Parallel()
	b := setup(t, withWorkerTimeout(30*time.Second))
	id := create(t, b, taskwire.CreateParams{Text: "long", LeaseMs: client.Ptr[int64](1000)}).ID
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) {
			time.Sleep(2500 * time.Millisecond)
			return task.Attempt, nil
		})
	wait(t, runWorker(ctx(t), w))
	if got := get(t, b, id); got.Status != taskwire.StatusCompleted || got.Attempt != 1 || string(got.Result) != "1" {
		t.Fatalf("task: %s, attempt %d, result %s; want completed on attempt 1", got.Status, got.Attempt, got.Result)
	}
}

// TestWorkerRegistersAgain: a worker the server forgot (unregistered
// behind its back) registers again and keeps working.
func TestWorkerRegistersAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, withWorkerTimeout(900*time.Millisecond))
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", PollWait: 200 * time.Millisecond, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) { return "ok", nil })
	cx, cancel := context.WithCancel(ctx(t))
	errc := runWorker(cx, w)
	defer func() { cancel(); wait(t, errc) }()

	waitFor(t, func() bool { ws, _ := b.c.Workers(ctx(t)); return len(ws.Workers) == 1 })
	if _, err := b.c.Unregister(ctx(t), "w1"); err != nil {
		t.Fatal(err)
	}
	id := create(t, b, taskwire.CreateParams{Text: "after"}).ID
	waitFor(t, func() bool { return get(t, b, id).Status == taskwire.StatusCompleted })
	ws, _ := b.c.Workers(ctx(t))
	if len(ws.Workers) != 1 || ws.Workers[0].Status != taskwire.WorkerOnline {
		t.Fatalf("workers: %+v", ws.Workers)
	}
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 20s")
}

// TestWorkerRenewsLeasesWhileOthersStart: tasks starting one after the
// other in another slot do not put off the heartbeat that keeps a long
// task's short lease (1s) alive.
func TestWorkerRenewsLeasesWhileOthersStart(t *testing.T) {
	t.Parallel()
	b := setup(t, withWorkerTimeout(30*time.Second))
	long := create(t, b, taskwire.CreateParams{Text: "long", Priority: client.Ptr(100), LeaseMs: client.Ptr[int64](1000)}).ID
	batch := b.c.NewBatch()
	for i := range 400 {
		batch.CreateTask(taskwire.CreateParams{Text: fmt.Sprintf("quick-%d", i)})
	}
	if err := batch.Send(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var longDone atomic.Bool
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", Concurrency: 2, ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) {
			if task.ID == long {
				defer longDone.Store(true)
				time.Sleep(3 * time.Second)
			} else if !longDone.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			return task.Attempt, nil
		})
	wait(t, runWorker(ctx(t), w))
	if got := get(t, b, long); got.Status != taskwire.StatusCompleted || got.Attempt != 1 {
		t.Fatalf("long task: %s, attempt %d; want completed on attempt 1", got.Status, got.Attempt)
	}
}

// TestWorkerStaysUnregistered: a heartbeat that finds the worker gone
// while Run unregisters it does not register it again.
func TestWorkerStaysUnregistered(t *testing.T) {
	t.Parallel()
	b := setup(t, withWorkerTimeout(600*time.Millisecond))
	// The answer to system.unregister is held back for a second, long
	// enough for several heartbeats (every 200ms) to reach the server.
	url := front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		body := peekBody(r)
		if !bytes.Contains(body, []byte(taskwire.MethodSystemUnregister)) {
			return false
		}
		out := forward(t, b.url, body)
		if out == nil {
			return false
		}
		time.Sleep(time.Second)
		_, _ = w.Write(out)
		return true
	})
	w := client.NewWorker(newClient(url), client.WorkerOptions{ID: "w1", ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) { return "ok", nil })
	wait(t, runWorker(ctx(t), w))
	ws, err := b.c.Workers(ctx(t))
	if err != nil || len(ws.Workers) != 0 {
		t.Fatalf("workers after Run: %+v, %v; want none", ws, err)
	}
}

// TestWorkerCompletesThroughRateLimit: a completion refused by the rate
// limit more times than the client retries a call is sent again until it
// lands, instead of leaving its task to the lease's expiry.
func TestWorkerCompletesThroughRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, withRateLimits(map[string]service.Limit{taskwire.MethodTaskComplete: {N: 1, Per: 100 * time.Millisecond}}))
	ids := createN(t, b, "limited", 8, taskwire.CreateParams{})
	c := client.New(b.url, client.Options{MaxAttempts: 2, MinBackoff: 10 * time.Millisecond})
	w := client.NewWorker(c, client.WorkerOptions{ID: "w1", Concurrency: 4, ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) { return task.Attempt, nil })
	wait(t, runWorker(ctx(t), w))
	counts := completions(t, b)
	for _, id := range ids {
		if got := get(t, b, id); got.Status != taskwire.StatusCompleted || got.Attempt != 1 || counts[id] != 1 {
			t.Errorf("%s: %s on attempt %d, completed %d times; want completed once on attempt 1", got.Text, got.Status, got.Attempt, counts[id])
		}
	}
}

// TestWorkerFailsRefusedResult: a result the server refuses (not UTF-8,
// over the body limit) fails its task with the reason, instead of leaving
// it in progress until its lease expires.
func TestWorkerFailsRefusedResult(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *server.Config) { c.MaxBodyBytes = 8 << 10 })
	badUTF8 := create(t, b, taskwire.CreateParams{Text: "bad utf-8"}).ID
	tooBig := create(t, b, taskwire.CreateParams{Text: "too big"}).ID
	w := client.NewWorker(b.c, client.WorkerOptions{ID: "w1", ExitWhenIdle: true, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) {
			if task.ID == badUTF8 {
				return json.RawMessage("\"a\xffb\""), nil
			}
			return strings.Repeat("x", 16<<10), nil
		})
	wait(t, runWorker(ctx(t), w))
	for id, want := range map[string]string{badUTF8: "UTF-8", tooBig: "body"} {
		if got := get(t, b, id); got.Status != taskwire.StatusFailed || !strings.Contains(got.Error, want) || got.Attempt != 1 {
			t.Errorf("%s: %s on attempt %d, error %q; want failed on attempt 1 naming %q", got.Text, got.Status, got.Attempt, got.Error, want)
		}
	}
}

// TestWorkerStopsWhenRefused: a worker whose token the server stops
// accepting (HTTP 401), or no longer lets act as this worker (-32002),
// returns that refusal from Run instead of claiming on forever. Its
// claims (every 100ms) meet the refusal long before its heartbeat would.
func TestWorkerStopsWhenRefused(t *testing.T) {
	t.Parallel()
	const adminTok, workerTok = "admin-token-0123456789", "worker-token-0123456789"
	admin := `{"name":"ops","role":"admin","token":"` + adminTok + `"}`
	for name, tc := range map[string]struct {
		after string
		is    func(error) bool
	}{
		// The next request meets HTTP 401; a long poll in flight ends
		// with -32002 "token revoked".
		"revoked": {admin, func(err error) bool { return client.IsUnauthorized(err) || client.IsNotAllowed(err) }},
		"rebound": {admin + `,{"name":"w1","role":"worker","workerId":"w2","token":"` + workerTok + `"}`, client.IsNotAllowed},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "tokens.json")
			writeFile(t, path, "["+admin+`,{"name":"w1","role":"worker","workerId":"w1","token":"`+workerTok+`"}]`)
			tokens, err := auth.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			b := setup(t, withWorkerTimeout(10*time.Minute), func(c *server.Config) { c.Tokens = tokens })
			c := client.New(b.url, client.Options{Token: workerTok, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
			w := client.NewWorker(c, client.WorkerOptions{ID: "w1", PollWait: 100 * time.Millisecond, Logger: quietLogger()},
				func(_ context.Context, task *taskwire.Task) (any, error) { return "ok", nil })
			errc := runWorker(ctx(t), w)
			ac := client.New(b.url, client.Options{Token: adminTok})
			waitFor(t, func() bool { ws, _ := ac.Workers(ctx(t)); return ws != nil && len(ws.Workers) == 1 })
			writeFile(t, path, "["+tc.after+"]")
			if err := tokens.Reload(); err != nil {
				t.Fatal(err)
			}
			// Without the fix Run returns nil when ctx's minute is over.
			if err := <-errc; !tc.is(err) {
				t.Fatalf("Run: %v, want the refusal", err)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

package client_test

import (
	"bytes"
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// TestWorkerRunsTasksHeldForIt: tasks the server holds in progress for the
// worker's id, which the worker never saw, are run rather than kept alive
// by its heartbeats forever.
func TestWorkerRunsTasksHeldForIt(t *testing.T) {
	t.Parallel()

	// A worker restarted under the same id finds the tasks its previous
	// process claimed.
	t.Run("claimed by a previous process", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := create(t, b, taskwire.CreateParams{Text: "held"}).ID
		if _, err := b.c.Register(ctx(t), taskwire.RegisterParams{ID: "w1"}); err != nil {
			t.Fatal(err)
		}
		if r, err := b.c.ClaimTasks(ctx(t), taskwire.ClaimParams{WorkerID: "w1"}); err != nil || !r.Claimed {
			t.Fatalf("claim: %+v, %v", r, err)
		}
		runUntilCompleted(t, b, b.c, id)
	})

	// The answer of a claim that took a task is lost on the way back.
	t.Run("claim answer lost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := create(t, b, taskwire.CreateParams{Text: "held"}).ID
		var lost atomic.Bool
		c := newClient(front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
			return !lost.Load() && r.URL.Path == "/rpc" && loseClaimAnswer(t, b, w, r, &lost)
		}))
		runUntilCompleted(t, b, c, id)
		if !lost.Load() {
			t.Fatal("no claim answer was lost")
		}
	})
}

// TestClaimAnswerLost: a claim whose answer is lost is not sent again
// (a second claim would take more tasks while the first ones stay held
// for the worker): the caller gets the error.
func TestClaimAnswerLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	create(t, b, taskwire.CreateParams{Text: "a"})
	create(t, b, taskwire.CreateParams{Text: "b"})
	if _, err := b.c.Register(ctx(t), taskwire.RegisterParams{ID: "w1"}); err != nil {
		t.Fatal(err)
	}
	var lost atomic.Bool
	var claims atomic.Int64
	c := newClient(front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		claims.Add(1)
		return !lost.Load() && loseClaimAnswer(t, b, w, r, &lost)
	}))
	r, err := c.ClaimTasks(ctx(t), taskwire.ClaimParams{WorkerID: "w1"})
	if err == nil || claims.Load() != 1 {
		t.Fatalf("claim = %+v, %v after %d requests; want an error after 1", r, err, claims.Load())
	}
	list, _ := b.c.ListTasks(ctx(t), taskwire.ListParams{Status: taskwire.StatusInProgress})
	if list.TotalCount != 1 {
		t.Fatalf("%d tasks in progress, want 1", list.TotalCount)
	}
}

// runUntilCompleted runs a worker w1 of c until task id is completed.
func runUntilCompleted(t *testing.T, b *bundle, c *client.Client, id string) {
	t.Helper()
	cx, cancel := context.WithCancel(ctx(t))
	w := client.NewWorker(c, client.WorkerOptions{ID: "w1", PollWait: 200 * time.Millisecond, Logger: quietLogger()},
		func(_ context.Context, task *taskwire.Task) (any, error) { return task.Attempt, nil })
	errc := runWorker(cx, w)
	defer func() { cancel(); wait(t, errc) }()
	waitFor(t, func() bool { return get(t, b, id).Status == taskwire.StatusCompleted })
}

// loseClaimAnswer passes a task.claim to the server and, when it claimed
// a task, closes the connection instead of answering; it reports whether
// it answered the request.
func loseClaimAnswer(t *testing.T, b *bundle, w http.ResponseWriter, r *http.Request, lost *atomic.Bool) bool {
	body := peekBody(r)
	if !bytes.Contains(body, []byte(`"task.claim"`)) {
		return false
	}
	out := forward(t, b.url, body)
	if out == nil {
		return false
	}
	if !bytes.Contains(out, []byte(`"claimed":true`)) {
		_, _ = w.Write(out)
		return true
	}
	lost.Store(true)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
	return true
}

// TestWorkerRunsEachAttemptOnce: a task handed back behind the worker's
// back (here unregistered by an admin) and claimed again by the same
// worker while its first handler still runs is one task the worker runs:
// when the first handler returns, the second attempt still counts as run,
// so a later claim whose answer is lost does not start it a second time.
func TestWorkerRunsEachAttemptOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var completed atomic.Bool
	var refused atomic.Int64
	url := front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		body := peekBody(r)
		switch {
		case bytes.Contains(body, []byte(`"task.complete"`)):
			out := forward(t, b.url, body)
			if out == nil {
				return false
			}
			_, _ = w.Write(out)
			completed.Store(true)
			return true
		case completed.Load() && bytes.Contains(body, []byte(`"task.claim"`)):
			refused.Add(1)
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	started := make(chan int, 10)
	release := make(chan struct{})
	w := client.NewWorker(newClient(url), client.WorkerOptions{ID: "w1", Concurrency: 2,
		PollWait: 200 * time.Millisecond, Grace: 100 * time.Millisecond, Logger: quietLogger()},
		func(hctx context.Context, task *taskwire.Task) (any, error) {
			started <- task.Attempt
			if task.Attempt == 1 {
				<-release
			} else {
				<-hctx.Done()
			}
			return task.Attempt, nil
		})
	cx, cancel := context.WithCancel(ctx(t))
	errc := runWorker(cx, w)
	defer func() { cancel(); wait(t, errc) }()

	create(t, b, taskwire.CreateParams{Text: "twice"})
	if a := <-started; a != 1 {
		t.Fatalf("first run: attempt %d", a)
	}
	if _, err := b.c.Unregister(ctx(t), "w1"); err != nil {
		t.Fatal(err)
	}
	if a := <-started; a != 2 {
		t.Fatalf("second run: attempt %d", a)
	}
	close(release)
	waitFor(t, func() bool { return refused.Load() >= 3 || len(started) > 0 })
	select {
	case a := <-started:
		t.Fatalf("attempt %d started again while it runs", a)
	default:
	}
}

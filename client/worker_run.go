package client

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
)

// idleWait is the longest a claim waits with ExitWhenIdle: long enough
// not to spin while tasks run, short enough to notice an empty queue.
const idleWait = time.Second

// claimLoop claims tasks while slots are free and starts a handler for
// each, until ctx ends (or the queue is empty, with ExitWhenIdle). Each
// handler runs under hard and is counted in tasks. Before its first claim,
// and after a claim whose answer was lost, it first runs the tasks the
// server holds for the worker that no handler runs. It returns the refusal
// of the worker's token or role that stops it, if any.
func (w *Worker) claimLoop(ctx, hard context.Context, tasks *sync.WaitGroup) error {
	slots := make(chan struct{}, w.opts.Concurrency)
	wait := w.opts.PollWait
	if w.opts.ExitWhenIdle {
		wait = min(wait, idleWait)
	}
	failures := 0
	held := true
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1 + acquire(slots, min(cap(slots), taskwire.MaxClaimTasks)-1)
		claimed := !held
		var got []*taskwire.Task
		var err error
		if held {
			got, held, err = w.heldTasks(ctx, n)
		} else {
			got, err = w.claim(ctx, n, wait)
		}
		for range n - len(got) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			held = held || lostAnswer(ctx, err)
			failures++
			if err := w.claimFailed(ctx, err, failures); err != nil {
				return err
			}
			continue
		}
		failures = 0
		for _, t := range got {
			w.track(t)
			tasks.Go(func() {
				defer func() { <-slots }()
				w.runTask(hard, t)
			})
		}
		if claimed && len(got) == 0 && w.opts.ExitWhenIdle && len(slots) == 0 {
			return nil
		}
	}
}

// claim claims up to n tasks, waiting up to wait for one.
func (w *Worker) claim(ctx context.Context, n int, wait time.Duration) ([]*taskwire.Task, error) {
	res, err := w.c.ClaimTasks(ctx, taskwire.ClaimParams{WorkerID: w.opts.ID, MaxTasks: &n,
		Queues: w.opts.Queues, WaitMs: Ptr(wait.Milliseconds())})
	if err != nil || !res.Claimed {
		return nil, err
	}
	return res.Tasks, nil
}

// heldTasks returns up to n of the tasks the server holds in progress for
// the worker's id that no handler of this worker runs: those claimed by an
// earlier process under the same id, or by a claim whose answer was lost.
// The worker's heartbeats renew their leases, so no one else would ever
// run them. more reports whether others remain (or the list failed).
func (w *Worker) heldTasks(ctx context.Context, n int) (held []*taskwire.Task, more bool, err error) {
	list, err := w.c.ListTasks(ctx, taskwire.ListParams{Status: taskwire.StatusInProgress, AssignedTo: w.opts.ID,
		Limit: Ptr(taskwire.MaxListLimit), OrderBy: "createdAt", Order: "asc"})
	if err != nil {
		return nil, true, fmt.Errorf("list the tasks held for this worker: %w", err)
	}
	w.mu.Lock()
	for _, t := range list.Tasks {
		if _, ok := w.running[t.ID]; !ok {
			held = append(held, t)
		}
	}
	w.mu.Unlock()
	if len(held) > n {
		return held[:n], true, nil
	}
	return held, false, nil
}

// acquire takes up to n more free slots without waiting and returns how
// many it took.
func acquire(slots chan struct{}, n int) int {
	for i := range n {
		select {
		case slots <- struct{}{}:
		default:
			return i
		}
	}
	return n
}

// claimFailed handles a failed claim: a worker the server forgot
// registers again; a refusal of the worker's token or role is returned;
// other errors (already retried by the client) wait a backoff.
func (w *Worker) claimFailed(ctx context.Context, err error, failures int) error {
	if IsNotRegistered(err) {
		w.log.Warn("the server forgot this worker: registering again")
		if err = w.register(ctx); err == nil {
			return nil
		}
	}
	if refused(err) {
		return err
	}
	w.log.Warn("claim", "err", err)
	w.c.sleep(ctx, w.c.backoff(failures, err))
	return nil
}

// runTask runs the handler of t and reports its outcome, unless the grace
// period ended first (the task is then handed back by unregistering).
func (w *Worker) runTask(hard context.Context, t *taskwire.Task) {
	defer w.untrack(t)
	result, herr := w.handle(hard, t)
	if hard.Err() != nil {
		return
	}
	p := taskwire.CompleteParams{ID: t.ID, WorkerID: w.opts.ID, Attempt: Ptr(t.Attempt)}
	if herr == nil {
		raw, err := encodeResult(result)
		if err != nil {
			herr = fmt.Errorf("encode result: %w", err)
		}
		p.Result = raw
	}
	if herr != nil {
		p.Result = nil
		p.Error = Ptr(errorText(herr))
	}
	err := w.complete(hard, p)
	if p.Error == nil && refusedResult(err) {
		// A result the server will never take fails the task, rather
		// than leave it in progress until its lease expires.
		p.Result, p.Error = nil, Ptr(errorText(fmt.Errorf("the server refused the result: %w", err)))
		err = w.complete(hard, p)
	}
	if err != nil {
		w.log.Warn("complete", "task", t.ID, "attempt", t.Attempt, "err", err)
	}
}

// complete sends a task's outcome. A refusal worth retrying (rate limit,
// unavailable backend, lost connection) that outlasts the client's own
// retries is sent again after a backoff, while the heartbeat keeps the
// lease, until it lands or ctx (the grace period) ends.
func (w *Worker) complete(ctx context.Context, p taskwire.CompleteParams) error {
	for failures := 1; ; failures++ {
		_, err := w.c.CompleteTask(ctx, p)
		if err == nil || !retryable(ctx, err) || !w.c.sleep(ctx, w.c.backoff(failures, err)) {
			return err
		}
	}
}

// refusedResult reports whether err refuses the params of a completion
// (a result that is not valid, or too large) rather than its task's state.
func refusedResult(err error) bool {
	switch CodeOf(err) {
	case taskwire.CodeTooLarge:
		return true
	case taskwire.CodeInvalidParams:
		return !IsNotFound(err) && !IsNotRegistered(err)
	}
	return false
}

// handle runs the handler; a panic becomes the task's error.
func (w *Worker) handle(ctx context.Context, t *taskwire.Task) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("handler panicked", "task", t.ID, "panic", r, "stack", string(debug.Stack()))
			result, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return w.h(ctx, t)
}

// encodeResult returns the JSON of a handler's result.
func encodeResult(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("result is not valid JSON")
		}
		return raw, nil
	}
	return taskwire.MarshalJSON(v)
}

// maxErrorRunes is the longest error message task.complete accepts.
const maxErrorRunes = 65536

// errorText is err's message as task.complete accepts it: not empty, at
// most maxErrorRunes characters, any NUL character or invalid UTF-8
// replaced by U+FFFD.
func errorText(err error) string {
	s := strings.ToValidUTF8(strings.ReplaceAll(err.Error(), "\x00", "\uFFFD"), "\uFFFD")
	if s == "" {
		return "handler failed"
	}
	if utf8.RuneCountInString(s) > maxErrorRunes {
		s = string([]rune(s)[:maxErrorRunes])
	}
	return s
}

func (w *Worker) track(t *taskwire.Task) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running[t.ID] = t
	select {
	case w.beat <- struct{}{}:
	default:
	}
}

// untrack forgets t once its handler has returned, unless the task was
// claimed again (a later attempt) while it ran: that run goes on.
func (w *Worker) untrack(t *taskwire.Task) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[t.ID] == t {
		delete(w.running, t.ID)
	}
}

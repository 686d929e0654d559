package client

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/taskwire/taskwire"
)

// Handler runs one task. Its result (any value encoding to JSON; a
// json.RawMessage is sent as is) completes the task; a non-nil error
// fails it with the error's message. ctx ends when the worker's grace
// period after a shutdown is over: a handler that returns then has its
// task handed back to the queue instead of completed (or failed by the
// server, when it was the task's last attempt).
type Handler func(ctx context.Context, task *taskwire.Task) (result any, err error)

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// ID is the worker id (default HOSTNAME-PID-RANDOM).
	ID string
	// Queues the worker claims from (default: the server's default queue).
	Queues []string
	// Concurrency is how many tasks run at once (default 1).
	Concurrency int
	// PollWait is how long one claim waits for a task (long poll; default
	// and maximum 30s).
	PollWait time.Duration
	// Grace is how long running tasks may take to finish once the
	// worker's context ends (default 30s; EndGrace ends it sooner); the
	// tasks still running then are handed back to the queue, but for
	// those on their last attempt, which the server fails.
	Grace time.Duration
	// ExitWhenIdle makes Run return once a claim finds no task and no
	// task is running.
	ExitWhenIdle bool
	// Metadata is sent with the registration.
	Metadata json.RawMessage
	// Logger receives the worker's troubles (default slog.Default()).
	Logger *slog.Logger
}

// Worker registers with the server, claims tasks and runs a Handler for
// each, with a bounded concurrency. Run it with Run.
type Worker struct {
	c    *Client
	opts WorkerOptions
	h    Handler
	log  *slog.Logger

	// mu guards running (the tasks whose handler has not returned) and
	// interval (the server's heartbeat interval).
	mu       sync.Mutex
	running  map[string]*taskwire.Task
	interval time.Duration
	// regMu serialises registrations: the claim loop and the heartbeat
	// may both find that the server forgot the worker.
	regMu sync.Mutex
	// beat wakes the heartbeat loop when a task with a short lease starts.
	beat chan struct{}
	// endGrace is closed by EndGrace.
	endGrace     chan struct{}
	endGraceOnce sync.Once
}

// NewWorker returns a worker that runs h for each task it claims.
func NewWorker(c *Client, opts WorkerOptions, h Handler) *Worker {
	if opts.ID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "worker"
		}
		opts.ID = fmt.Sprintf("%s-%d-%s", sanitizeID(host), os.Getpid(), strconv.FormatUint(rand.Uint64N(1<<24), 36))
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.PollWait <= 0 || opts.PollWait > taskwire.MaxWaitMs*time.Millisecond {
		opts.PollWait = taskwire.MaxWaitMs * time.Millisecond
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Worker{c: c, opts: opts, h: h, log: opts.Logger.With("worker", opts.ID),
		running: map[string]*taskwire.Task{}, beat: make(chan struct{}, 1), endGrace: make(chan struct{})}
}

// ID returns the worker id.
func (w *Worker) ID() string { return w.opts.ID }

// sanitizeID keeps the characters a worker id may hold.
func sanitizeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '-'
		}
	}
	return string(b)
}

// Run registers the worker and runs tasks until ctx ends (or, with
// ExitWhenIdle, until there is nothing left to do). It then stops
// claiming, lets the running tasks finish within Grace (or until
// EndGrace), hands the others back to the queue by unregistering (the
// server fails those on their last attempt) and returns nil (after waiting up to 5s
// more for the handlers whose context it cancelled to return). It returns
// an error only when the worker cannot register, or when the server
// refuses its token or role (HTTP 401, -32002) on a claim, heartbeat or
// registration: it then shuts down as when ctx ends and returns that
// refusal. ctx ending first is not an error.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// The heartbeat and the completions outlive ctx: they must go on
	// through the grace period.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	beats, stopBeats := context.WithCancel(bg)
	defer stopBeats()
	// claims ends with ctx, or with the refusal that stops the worker.
	claims, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeatLoop(beats, stop) })

	// hard ends the handlers when the grace period is over.
	hard, stopHard := context.WithCancel(bg)
	defer stopHard()
	var tasks sync.WaitGroup
	if err := w.claimLoop(claims, hard, &tasks); err != nil {
		stop(err)
	}

	finished := make(chan struct{})
	go func() { tasks.Wait(); close(finished) }()
	if !w.waitGrace(finished) {
		stopHard()
		w.log.Warn("grace period over: handing back the tasks still running", "tasks", w.runningIDs())
	}
	// The heartbeat stops first: one that found the worker unregistered
	// would register it again.
	stopBeats()
	hb.Wait()
	// Unregistering requeues whatever is still in progress, including a
	// task claimed by a long poll cut short by the shutdown (the server
	// fails such a task instead when it was its last attempt).
	uctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if _, err := w.c.Unregister(uctx, w.opts.ID); err != nil && !IsNotRegistered(err) {
		w.log.Warn("unregister", "err", err)
	}
	stopBG()
	select {
	case <-finished:
	case <-time.After(abandonWait):
		w.log.Warn("handlers still running after their context ended", "tasks", w.runningIDs())
	}
	if err := context.Cause(claims); refused(err) {
		return err
	}
	return nil
}

// waitGrace waits for finished to close until the grace period is over
// or EndGrace is called, and reports whether it closed.
func (w *Worker) waitGrace(finished <-chan struct{}) bool {
	select {
	case <-finished:
		return true
	case <-time.After(w.opts.Grace):
	case <-w.endGrace:
	}
	return false
}

// EndGrace ends the grace period at once, as if Grace were over: the
// handlers' context is cancelled and their tasks are handed back to the
// queue. Called before Run's context ends, it makes Run skip the grace
// period then. It may be called more than once, from any goroutine.
func (w *Worker) EndGrace() {
	w.endGraceOnce.Do(func() { close(w.endGrace) })
}

// refused reports whether err refuses the worker's token (HTTP 401) or
// role (-32002): retrying cannot help, so the worker stops.
func refused(err error) bool { return IsUnauthorized(err) || IsNotAllowed(err) }

// abandonWait is how long Run waits, once the grace period is over and the
// tasks are handed back, for the handlers to return after their context
// was cancelled.
const abandonWait = 5 * time.Second

// register registers the worker and records the heartbeat interval.
func (w *Worker) register(ctx context.Context) error {
	w.regMu.Lock()
	defer w.regMu.Unlock()
	r, err := w.c.Register(ctx, taskwire.RegisterParams{ID: w.opts.ID, Queues: w.opts.Queues, Metadata: w.opts.Metadata})
	if err != nil {
		return fmt.Errorf("register %s: %w", w.opts.ID, err)
	}
	w.mu.Lock()
	w.interval = time.Duration(r.HeartbeatIntervalMs) * time.Millisecond
	w.mu.Unlock()
	return nil
}

// runningIDs returns the ids of the tasks whose handler runs.
func (w *Worker) runningIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.running))
	for id := range w.running {
		ids = append(ids, id)
	}
	return ids
}

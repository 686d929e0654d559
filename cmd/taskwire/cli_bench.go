package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

const benchUsage = `Usage: taskwire bench [flags]

Loads a running server: creates --tasks tasks, then --workers workers claim
them all, then complete them all, each phase measured on its own. Requests
carry --batch tasks (creates and completions as JSON-RPC batches, claims
with maxTasks up to 10). Prints the tasks/s of each phase and end to end,
and the p50/p95/p99 latency of each kind of request. A progress bar shows on
a terminal; otherwise one line per phase.

The default rate limits (100 claims and completions per minute per worker)
throttle a bench: run it against a server started with --no-rate-limit, or
with limits raised for the test. A run stopped before the end (Ctrl-C)
deletes the tasks it created.

Example:
  taskwire serve --no-rate-limit &
  taskwire bench --tasks 10000 --workers 8 --batch 10
`

// benchConfig is what a bench run does.
type benchConfig struct {
	tasks, workers, batch int
	queue                 string
}

func runBench(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "bench", benchUsage, true)
	var cfg benchConfig
	f.IntVar(&cfg.tasks, "tasks", 1000, "tasks to create, claim and complete")
	f.IntVar(&cfg.workers, "workers", 4, "concurrent workers (and concurrent producers)")
	f.IntVar(&cfg.batch, "batch", 1, "tasks per request (1..1000; claims take at most 10)")
	f.StringVar(&cfg.queue, "queue", "", "queue to use (default a fresh bench-... queue)")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	switch {
	case cfg.tasks < 1, cfg.workers < 1:
		return usageError("--tasks and --workers must be at least 1")
	case cfg.batch < 1 || cfg.batch > taskwire.MaxListLimit:
		return usageError("--batch must be between 1 and 1000")
	}
	if cfg.queue == "" {
		cfg.queue = "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	b := &bench{c: f.client(), cfg: cfg, cio: cio}
	report, err := b.run(ctx)
	if err != nil && ctx.Err() != nil {
		return exitError{code: exitServer, err: errors.New("bench: interrupted before the end")}
	}
	if err != nil {
		return withExitCode(err)
	}
	if f.json {
		return printJSON(cio.stdout, report)
	}
	return report.print(cio)
}

// bench is one run of the load generator.
type bench struct {
	c   *client.Client
	cfg benchConfig
	cio cliIO

	mu      sync.Mutex
	created []string // the ids of the tasks it created
}

// benchWorker is one simulated worker and the tasks it holds.
type benchWorker struct {
	id    string
	tasks []*taskwire.Task
}

// phase is the measure of one phase.
type phase struct {
	Name        string  `json:"name"`
	Tasks       int     `json:"tasks"`
	Seconds     float64 `json:"seconds"`
	TasksPerSec float64 `json:"tasksPerSec"`
	Requests    int     `json:"requests,omitempty"`
	P50Ms       float64 `json:"p50Ms,omitempty"`
	P95Ms       float64 `json:"p95Ms,omitempty"`
	P99Ms       float64 `json:"p99Ms,omitempty"`
}

// benchReport is the summary of a run.
type benchReport struct {
	Server   string  `json:"server"`
	Queue    string  `json:"queue"`
	Tasks    int     `json:"tasks"`
	Workers  int     `json:"workers"`
	Batch    int     `json:"batch"`
	Phases   []phase `json:"phases"`
	EndToEnd phase   `json:"endToEnd"`
}

func (b *bench) run(ctx context.Context) (_ *benchReport, err error) {
	defer context.AfterFunc(ctx, func() {
		fmt.Fprintln(b.cio.stderr, "bench: interrupted; cleaning up (interrupt again to stop at once and leave its tasks)")
	})()
	defer func() {
		if err != nil {
			b.discard(context.WithoutCancel(ctx))
		}
	}()
	start := time.Now()
	created, err := b.create(ctx)
	if err != nil {
		return nil, err
	}
	workers, err := b.register(ctx)
	if err != nil {
		return nil, err
	}
	defer b.unregister(context.WithoutCancel(ctx), workers)
	claimed, err := b.claim(ctx, workers)
	if err != nil {
		return nil, err
	}
	completed, err := b.complete(ctx, workers)
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	r := &benchReport{Server: b.c.URL(), Queue: b.cfg.queue, Tasks: b.cfg.tasks, Workers: b.cfg.workers,
		Batch: b.cfg.batch, Phases: []phase{created, claimed, completed},
		EndToEnd: phase{Name: "end to end", Tasks: completed.Tasks, Seconds: took.Seconds(),
			TasksPerSec: float64(completed.Tasks) / took.Seconds()}}
	return r, nil
}

// timer records the latency of requests from several goroutines.
type timer struct {
	mu   sync.Mutex
	lats []time.Duration
}

// time runs fn and records how long it took.
func (t *timer) time(fn func() error) error {
	start := time.Now()
	err := fn()
	d := time.Since(start)
	t.mu.Lock()
	t.lats = append(t.lats, d)
	t.mu.Unlock()
	return err
}

// phase summarises n tasks done in took.
func (t *timer) phase(name string, n int, took time.Duration) phase {
	p := phase{Name: name, Tasks: n, Seconds: took.Seconds(), TasksPerSec: float64(n) / took.Seconds(), Requests: len(t.lats)}
	slices.Sort(t.lats)
	p.P50Ms, p.P95Ms, p.P99Ms = percentile(t.lats, 0.50), percentile(t.lats, 0.95), percentile(t.lats, 0.99)
	return p
}

// percentile returns the q-th quantile of sorted latencies, in ms.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.5) - 1
	return float64(sorted[max(0, min(i, len(sorted)-1))].Microseconds()) / 1000
}

// parallel runs fn(i) for i in [0, n) on n goroutines and returns the
// first error; the others see ctx cancelled.
func parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

// create creates the tasks, b.cfg.batch per request, from b.cfg.workers
// producers.
func (b *bench) create(ctx context.Context) (phase, error) {
	chunks := make(chan int, b.cfg.tasks/b.cfg.batch+1)
	for left := b.cfg.tasks; left > 0; left -= b.cfg.batch {
		chunks <- min(left, b.cfg.batch)
	}
	close(chunks)
	var t timer
	var done atomic.Int64
	bar := newProgress(b.cio.stderr, "create", b.cfg.tasks)
	start := time.Now()
	err := parallel(ctx, b.cfg.workers, func(ctx context.Context, _ int) error {
		for n := range chunks {
			if err := ctx.Err(); err != nil {
				return err
			}
			batch := b.c.NewBatch()
			results := make([]*client.Result[taskwire.Task], n)
			for i := range results {
				results[i] = batch.CreateTask(taskwire.CreateParams{Text: "bench task", Queue: b.cfg.queue})
			}
			// Sent to the end even when the run is interrupted meanwhile, so
			// that the bench knows every task it created (see discard).
			sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
			err := t.time(func() error { return send(sendCtx, batch, results) })
			cancel()
			b.record(results)
			if err != nil {
				return err
			}
			done.Add(int64(n))
			bar.Add(n)
		}
		return nil
	})
	bar.Finish()
	return t.phase("create", int(done.Load()), time.Since(start)), err
}

// record notes the tasks that results created.
func (b *bench) record(results []*client.Result[taskwire.Task]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range results {
		if task, err := r.Get(); err == nil {
			b.created = append(b.created, task.ID)
		}
	}
}

// createTimeout bounds a batch of creates, which an interrupted run still
// waits for.
const createTimeout = 30 * time.Second

// discardBatch is how many deletes discard sends in one batch, and
// discardTimeout bounds them all.
const (
	discardBatch   = 100
	discardTimeout = 30 * time.Second
)

// discard deletes the tasks the bench created, after a run that did not
// finish (interrupted, or failed), so that none is left waiting in a
// queue nobody serves; it says on stderr what it did. Deleting takes an
// admin's token when the server wants one.
func (b *bench) discard(ctx context.Context) {
	b.mu.Lock()
	ids := b.created
	b.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, discardTimeout)
	defer cancel()
	var err error
	deleted := 0
	for chunk := range slices.Chunk(ids, discardBatch) {
		batch := b.c.NewBatch()
		results := make([]*client.Result[taskwire.DeleteResult], len(chunk))
		for i, id := range chunk {
			results[i] = batch.DeleteTask(id)
		}
		if err = batch.Send(ctx); err != nil {
			break
		}
		for _, r := range results {
			if _, e := r.Get(); e == nil || client.IsNotFound(e) {
				deleted++
			} else if err == nil {
				err = e
			}
		}
	}
	fmt.Fprintf(b.cio.stderr, "bench: stopped before the end; deleted %d of the %d tasks it had created in queue %s\n",
		deleted, len(ids), b.cfg.queue)
	if err != nil {
		fmt.Fprintf(b.cio.stderr, "bench: %d tasks left in queue %s: %v\n", len(ids)-deleted, b.cfg.queue, err)
	}
}

// send sends a batch and returns the first call's error.
func send[T any](ctx context.Context, batch *client.Batch, results []*client.Result[T]) error {
	if err := batch.Send(ctx); err != nil {
		return err
	}
	for _, r := range results {
		if _, err := r.Get(); err != nil {
			return err
		}
	}
	return nil
}

// register registers the bench's workers.
func (b *bench) register(ctx context.Context) ([]*benchWorker, error) {
	host, _ := os.Hostname()
	workers := make([]*benchWorker, b.cfg.workers)
	for i := range workers {
		workers[i] = &benchWorker{id: fmt.Sprintf("%s-%d", b.cfg.queue, i)}
		if _, err := b.c.Register(ctx, taskwire.RegisterParams{ID: workers[i].id, Queues: []string{b.cfg.queue},
			Metadata: json.RawMessage(fmt.Sprintf(`{"bench":true,"host":%q}`, host))}); err != nil {
			return nil, err
		}
	}
	return workers, nil
}

// unregister removes the bench's workers.
func (b *bench) unregister(ctx context.Context, workers []*benchWorker) {
	for _, w := range workers {
		_, _ = b.c.Unregister(ctx, w.id)
	}
}

// claim claims every task of the queue, min(batch, 10) per request, with
// all workers at once.
func (b *bench) claim(ctx context.Context, workers []*benchWorker) (phase, error) {
	var t timer
	var done atomic.Int64
	bar := newProgress(b.cio.stderr, "claim", b.cfg.tasks)
	per := min(b.cfg.batch, taskwire.MaxClaimTasks)
	start := time.Now()
	err := parallel(ctx, len(workers), func(ctx context.Context, i int) error {
		w := workers[i]
		for done.Load() < int64(b.cfg.tasks) {
			var res *taskwire.ClaimResult
			err := t.time(func() (err error) {
				res, err = b.c.ClaimTasks(ctx, taskwire.ClaimParams{WorkerID: w.id, MaxTasks: &per, Queues: []string{b.cfg.queue}})
				return err
			})
			if err != nil {
				return err
			}
			if !res.Claimed {
				return nil
			}
			w.tasks = append(w.tasks, res.Tasks...)
			done.Add(int64(len(res.Tasks)))
			bar.Add(len(res.Tasks))
		}
		return nil
	})
	bar.Finish()
	return t.phase("claim", int(done.Load()), time.Since(start)), err
}

// complete completes every claimed task, batch per request, each worker
// its own.
func (b *bench) complete(ctx context.Context, workers []*benchWorker) (phase, error) {
	var t timer
	var done atomic.Int64
	total := 0
	for _, w := range workers {
		total += len(w.tasks)
	}
	bar := newProgress(b.cio.stderr, "complete", total)
	start := time.Now()
	err := parallel(ctx, len(workers), func(ctx context.Context, i int) error {
		w := workers[i]
		for chunk := range slices.Chunk(w.tasks, b.cfg.batch) {
			batch := b.c.NewBatch()
			results := make([]*client.Result[taskwire.CompleteResult], len(chunk))
			for j, task := range chunk {
				results[j] = batch.CompleteTask(taskwire.CompleteParams{ID: task.ID, WorkerID: w.id,
					Attempt: client.Ptr(task.Attempt), Result: json.RawMessage(`true`)})
			}
			if err := t.time(func() error { return send(ctx, batch, results) }); err != nil {
				return err
			}
			done.Add(int64(len(chunk)))
			bar.Add(len(chunk))
		}
		return nil
	})
	bar.Finish()
	return t.phase("complete", int(done.Load()), time.Since(start)), err
}

// print writes the summary as two tables.
func (r *benchReport) print(cio cliIO) error {
	fmt.Fprintf(cio.stdout, "\n%d tasks, %d workers, batch %d, queue %s, server %s\n\n",
		r.Tasks, r.Workers, r.Batch, r.Queue, r.Server)
	tw := tabwriter.NewWriter(cio.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\ttasks\tseconds\ttasks/s\trequests\tp50 ms\tp95 ms\tp99 ms\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t\n", p.Name, p.Tasks, p.Seconds, p.TasksPerSec,
			p.Requests, p.P50Ms, p.P95Ms, p.P99Ms)
	}
	e := r.EndToEnd
	fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.0f\t\t\t\t\t\n", e.Name, e.Tasks, e.Seconds, e.TasksPerSec)
	return tw.Flush()
}

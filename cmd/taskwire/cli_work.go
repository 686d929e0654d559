package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

const workUsage = `Usage: taskwire work [flags] -- CMD [ARGS...]

Runs as a worker: for each task it claims, it runs CMD with the task as
JSON on stdin (and TASKWIRE_TASK_ID, TASKWIRE_TASK_ATTEMPT in its
environment). Exit status 0 completes the task with CMD's stdout as the
result (JSON when it parses as JSON, else a string); any other status fails
it with CMD's stderr, trimmed, and the exit status, and so does running
past --timeout. Processes CMD leaves running in its process group when
it exits get SIGTERM. On SIGINT or SIGTERM it stops claiming, lets running
commands finish within --grace, hands the others back to the queue (one
on its last attempt fails instead) and exits 0; a second Ctrl-C hands the
running tasks back at once.

Example:
  taskwire work --queue images --concurrency 4 -- ./resize.sh
  taskwire work --exit-when-idle -- sh -c 'jq -r .text | tr a-z A-Z'
`

func runWork(ctx context.Context, cio cliIO, args []string) error {
	f := newFlags(cio, "work", workUsage, false)
	queues := f.String("queue", "", "comma-separated queues to claim from (default: the default queue)")
	concurrency := f.Int("concurrency", 1, "commands run at once")
	workerID := f.String("worker-id", "", "worker id (default HOSTNAME-PID-RANDOM)")
	idle := f.Bool("exit-when-idle", false, "exit once no task is ready and none is running")
	grace := f.Duration("grace", 30*time.Second, "time running commands get to finish after SIGINT/SIGTERM (0s: none)")
	quiet := f.Bool("quiet", false, "print nothing per task")
	timeout := f.Duration("timeout", 0, "fail a task whose command runs longer (SIGTERM, then SIGKILL 5s later); 0: no limit")
	cmdArgs, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	if *concurrency < 1 {
		return usageError("--concurrency must be at least 1")
	}
	if *timeout < 0 {
		return usageError("--timeout must not be negative")
	}
	if *grace < 0 {
		return usageError("--grace must not be negative")
	}
	// A command that cannot be run would fail every task it is given.
	if _, err := exec.LookPath(cmdArgs[0]); err != nil {
		return usageError("work: %v", err)
	}
	var qs []string
	for q := range strings.SplitSeq(*queues, ",") {
		if q = strings.TrimSpace(q); q != "" {
			qs = append(qs, q)
		}
	}
	// The worker's log and the per-task lines share stderr.
	stderr := &lockedWriter{w: cio.stderr}
	r := &commandRunner{args: cmdArgs, timeout: *timeout, stderr: stderr, quiet: *quiet}
	w := client.NewWorker(f.client(), client.WorkerOptions{
		ID: *workerID, Queues: qs, Concurrency: *concurrency, Grace: *grace, ExitWhenIdle: *idle,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, r.run)
	return withExitCode(runInterruptible(ctx, cio, stderr, w, *grace))
}

// runInterruptible runs w until ctx ends or a first SIGINT or SIGTERM,
// which starts its grace period and says so on stderr; a second one ends
// the grace period at once. A grace of 0 hands the running tasks back as
// soon as the worker stops (the Worker's own zero Grace means its
// default).
func runInterruptible(ctx context.Context, cio cliIO, stderr io.Writer, w *client.Worker, grace time.Duration) error {
	sigs := make(chan os.Signal, 2)
	defer cio.notify(sigs)()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if grace == 0 {
		context.AfterFunc(ctx, w.EndGrace)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for n := 1; ; n++ {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if n > 1 {
				w.EndGrace()
				return
			}
			cancel()
			fmt.Fprintf(stderr, "taskwire: stopping: the running tasks get up to %s (--grace) to finish; Ctrl-C again hands them back and exits now\n", grace)
		}
	}()
	return w.Run(ctx)
}

// commandRunner runs a command per task.
type commandRunner struct {
	args    []string
	timeout time.Duration
	stderr  io.Writer
	quiet   bool
}

// maxStderr bounds the stderr kept for a failed task's error.
const maxStderr = 64 << 10

// run is the Handler of `taskwire work`.
func (r *commandRunner) run(ctx context.Context, t *taskwire.Task) (any, error) {
	in, err := t.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, r.timeout, errTimedOut)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, r.args[0], r.args[1:]...)
	isolate(cmd)
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(cmd.Environ(), "TASKWIRE_TASK_ID="+t.ID, "TASKWIRE_TASK_ATTEMPT="+strconv.Itoa(t.Attempt))
	var stdout bytes.Buffer
	stderr := &limitedBuffer{max: maxStderr}
	start := time.Now()
	err = runCollecting(cmd, in, &stdout, stderr)
	outcome := r.outcome(ctx, err)
	r.report(t, outcome, time.Since(start))
	if err == nil {
		return commandResult(stdout.Bytes()), nil
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		outcome += ": " + s
	}
	return nil, errors.New(outcome)
}

// runCollecting runs cmd with in on its stdin and its stdout and stderr
// copied to the writers, and returns cmd's own outcome as soon as it has
// exited: what it left running in its process group is ended then
// (endGroup), and its pipes are served until they close, for at most
// cmd.WaitDelay more. (With a reader and writers of its own, exec.Cmd
// would wait for every process holding the pipes, and fail a command that
// exited 0 after WaitDelay.)
func runCollecting(cmd *exec.Cmd, in []byte, stdout, stderr io.Writer) error {
	var pipes []*os.File // every end, closed at the end (again, for most)
	defer func() {
		for _, f := range pipes {
			f.Close()
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			pipes = append(pipes, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return err
	}
	outR, outW, err := pipe()
	if err != nil {
		return err
	}
	errR, errW, err := pipe()
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	err = cmd.Start()
	for _, f := range []*os.File{inR, outW, errW} {
		f.Close()
	}
	if err != nil {
		return err
	}
	var served sync.WaitGroup
	served.Go(func() {
		_, _ = inW.Write(in)
		inW.Close()
	})
	served.Go(func() { _, _ = io.Copy(stdout, outR) })
	served.Go(func() { _, _ = io.Copy(stderr, errR) })
	err = cmd.Wait()
	endGroup(cmd)
	closeAfter := time.AfterFunc(cmd.WaitDelay, func() {
		for _, f := range []*os.File{inW, outR, errR} {
			f.Close()
		}
	})
	served.Wait()
	closeAfter.Stop()
	return err
}

// errTimedOut ends a command that ran past --timeout.
var errTimedOut = errors.New("command timed out")

// outcome says how the command ended: "ok", "exit status N", "signal:
// killed", "timed out after D" or why it could not run.
func (r *commandRunner) outcome(ctx context.Context, err error) string {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(context.Cause(ctx), errTimedOut):
		return fmt.Sprintf("timed out after %s", r.timeout)
	case errors.As(err, &exit):
		return exit.ProcessState.String()
	}
	return fmt.Sprintf("run %s: %v", r.args[0], err)
}

// commandResult is a command's stdout as a result: the JSON value when it
// is one (JSON text is UTF-8), else the text as a JSON string, any byte
// that is not UTF-8 replaced by U+FFFD.
func commandResult(out []byte) json.RawMessage {
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) > 0 && utf8.Valid(trimmed) && json.Valid(trimmed) {
		return trimmed
	}
	s, _ := taskwire.MarshalJSON(strings.TrimRight(string(out), "\n"))
	return s
}

// report prints one line per task on stderr.
func (r *commandRunner) report(t *taskwire.Task, outcome string, took time.Duration) {
	if r.quiet {
		return
	}
	fmt.Fprintf(r.stderr, "%s attempt %d: %s in %s\n", t.ID, t.Attempt, outcome, took.Round(time.Millisecond))
}

// lockedWriter serialises the writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

// Write keeps what fits and reports all of p written, so that the
// command never blocks on a full pipe.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

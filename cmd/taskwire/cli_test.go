package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/servertest"
)

// cliBundle is an in-process server (SQLite in a temporary directory) for
// the client subcommands.
type cliBundle struct {
	srv *server.Server
	url string
	c   *client.Client
}

func cliSetup(t *testing.T) *cliBundle {
	t.Helper()
	s, url := servertest.Start(t)
	return &cliBundle{srv: s, url: url, c: client.New(url, client.Options{})}
}

// cliResult is what a subcommand printed and its exit status.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs `taskwire ARGS...` against the bundle's server.
func (b *cliBundle) cli(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runTaskwire(t, append([]string{args[0], "--server", b.url}, args[1:]...)...)
}

// runTaskwire runs the command line in-process and returns its exit status
// as main would set it.
func runTaskwire(t *testing.T, args ...string) cliResult {
	t.Helper()
	return runTaskwireCtx(t.Context(), args...)
}

// runTaskwireCtx runs the command line until it returns or ctx ends (as
// SIGINT or SIGTERM would end it).
func runTaskwireCtx(ctx context.Context, args ...string) cliResult {
	cx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	return resultOf(run(cx, args, &stdout, &stderr), &stdout, &stderr)
}

// runWorkSignalled runs `taskwire work ARGS...` with the test as the
// source of its SIGINT and SIGTERM: it sends the channel the command
// listens on to signals.
func runWorkSignalled(ctx context.Context, signals chan<- chan<- os.Signal, args ...string) cliResult {
	var stdout, stderr bytes.Buffer
	cio := newCLIIO(&stdout, &stderr)
	cio.notify = func(c chan<- os.Signal) func() {
		signals <- c
		return func() {}
	}
	return resultOf(runWork(ctx, cio, args), &stdout, &stderr)
}

// resultOf returns what a command printed and the exit status of err.
func resultOf(err error, stdout, stderr *bytes.Buffer) cliResult {
	code := report(stderr, err)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// want fails the test unless r exited with code.
func (r cliResult) want(t *testing.T, code int) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// TestCLITasks drives create, get, list and complete end to end, with
// the exit statuses scripts rely on.
func TestCLITasks(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)

	id := strings.TrimSpace(b.cli(t, "create", "--queue", "mail", "--priority", "80",
		"--metadata", `{"to":"a@example.com"}`, "send mail").want(t, exitOK).stdout)
	delayed := b.cli(t, "create", "later", "--delay", "1h", "--json").want(t, exitOK).stdout
	var d taskwire.Task
	if err := json.Unmarshal([]byte(delayed), &d); err != nil || time.Until(d.RunAt) < 59*time.Minute {
		t.Fatalf("delayed task %s: %v", delayed, err)
	}
	again := b.cli(t, "create", "--idempotency-key", "k1", "once").want(t, exitOK).stdout
	if b.cli(t, "create", "--idempotency-key", "k1", "once").want(t, exitOK).stdout != again {
		t.Fatal("a second create with the same key made a new task")
	}

	var got taskwire.Task
	if err := json.Unmarshal([]byte(b.cli(t, "get", id).want(t, exitOK).stdout), &got); err != nil ||
		got.Queue != "mail" || got.Priority != 80 || compact(got.Metadata) != `{"to":"a@example.com"}` {
		t.Fatalf("get: %+v, %v", got, err)
	}

	table := b.cli(t, "list", "--queue", "mail").want(t, exitOK).stdout
	if !strings.Contains(table, "ID  ") || !strings.Contains(table, id) || !strings.Contains(table, "send mail") ||
		!strings.Contains(table, "1-1 of 1 tasks") {
		t.Fatalf("list table:\n%s", table)
	}
	var page taskwire.ListResult
	out := b.cli(t, "list", "--json", "--order-by", "priority", "--asc", "--limit", "2").want(t, exitOK).stdout
	if err := json.Unmarshal([]byte(out), &page); err != nil || page.TotalCount != 3 || len(page.Tasks) != 2 ||
		!page.HasMore || page.Tasks[1].Priority != 50 {
		t.Fatalf("list --json: %s", out)
	}

	b.cli(t, "complete", id, "--result", `{"ok":true}`).want(t, exitConflict) // not assigned yet
	if _, err := b.c.Register(t.Context(), taskwire.RegisterParams{ID: "w1", Queues: []string{"mail"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.ClaimTasks(t.Context(), taskwire.ClaimParams{WorkerID: "w1"}); err != nil {
		t.Fatal(err)
	}
	b.cli(t, "complete", id, "--result", `{"ok":true}`, "--worker-id", "w2").want(t, exitConflict)
	if out := b.cli(t, "complete", id, "--result", `{"ok":true}`, "--worker-id", "w1").want(t, exitOK).stdout; out != id+" completed\n" {
		t.Fatalf("complete printed %q", out)
	}
	if got := b.cli(t, "get", "--json", id).want(t, exitOK).stdout; !strings.Contains(got, `"result":{"ok":true}`) {
		t.Fatalf("completed task: %s", got)
	}
	b.cli(t, "complete", id, "--error", "too late").want(t, exitConflict)

	b.cli(t, "get", "t-missing").want(t, exitNotFound)
	b.cli(t, "complete", "t-missing", "--error", "x").want(t, exitNotFound)
}

// compact returns raw JSON without spaces.
func compact(raw []byte) string {
	var b bytes.Buffer
	_ = json.Compact(&b, raw)
	return b.String()
}

// TestCLIUsage: bad command lines exit 2, --help exits 0 with an example
// on every command, and an unreachable server exits 6.
func TestCLIUsage(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	for name := range cliCommands {
		r := runTaskwire(t, name, "--help").want(t, exitOK)
		if !strings.Contains(r.stdout, "Usage: taskwire "+name) || !strings.Contains(r.stdout, "Example:") ||
			!strings.Contains(r.stdout, "-server") {
			t.Errorf("%s --help:\n%s", name, r.stdout)
		}
	}
	for _, args := range [][]string{
		{"create"},                           // no text
		{"create", "a", "b"},                 // two texts
		{"create", "--metadata", "[1]", "x"}, // metadata not an object
		{"create", "--bogus", "x"},           // unknown flag
		{"get"},                              // no id
		{"list", "--status", "done"},         // unknown status
		{"complete", "t-1", "--result", "{"}, // result not JSON
		{"complete", "t-1", "--result", "1", "--error", "e"},
		{"work"}, // no command
		{"work", "--concurrency", "0", "--", "true"},
		{"bench", "--tasks", "0"},
		{"list", "--server", ":7700"}, // no host
		{"list", "--server", "ftp://127.0.0.1:7700"},
	} {
		b.cli(t, args...).want(t, exitUsage)
	}
	b.cli(t, "create", "--priority", "101", "x").want(t, exitUsage)
	runTaskwire(t, "list", "--server", "http://127.0.0.1:1").want(t, exitUnavailable)

	// A server that wants a token it did not get.
	var auth atomic.Value
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","error":{"code":-32002,"message":"Unauthorized"},"id":null}`)
	}))
	defer locked.Close()
	runTaskwire(t, "workers", "--server", locked.URL, "--token", "s3cret").want(t, exitNotAllowed)
	if got := auth.Load(); got != "Bearer s3cret" {
		t.Fatalf("Authorization header %q", got)
	}
}

// TestCLIFlagBounds: a numeric or enum flag outside the bounds of its
// param is a bad command line, named with its allowed values, found
// before any call (the server here refuses every call).
func TestCLIFlagBounds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "no calls expected", http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		args []string
		want string // in the message
	}{
		{[]string{"create", "--priority", "101", "x"}, "--priority must be between 0 and 100"},
		{[]string{"create", "--priority", "-1", "x"}, "--priority must be between 0 and 100"},
		{[]string{"create", "--max-attempts", "0", "x"}, "--max-attempts must be between 1 and 100"},
		{[]string{"create", "--max-attempts", "101", "x"}, "--max-attempts must be between 1 and 100"},
		{[]string{"create", "--delay", "8761h", "x"}, "--delay must be between 0s and 8760h0m0s"},
		{[]string{"create", "--delay", "-1s", "x"}, "--delay must be between 0s and 8760h0m0s"},
		{[]string{"list", "--limit", "0"}, "--limit must be between 1 and 1000"},
		{[]string{"list", "--limit", "1001"}, "--limit must be between 1 and 1000"},
		{[]string{"list", "--offset", "-1"}, "--offset must be between 0 and 1000000000"},
		{[]string{"list", "--order-by", "text"}, "--order-by must be createdAt, updatedAt, priority, status, assignedTo or completedAt"},
		{[]string{"list", "--status", "done"}, "--status must be pending, in_progress, completed or failed"},
		{[]string{"events", "--count", "-1"}, "--count must not be negative"},
		{[]string{"list", "--token", "tw_secret\n"}, "--token (or TASKWIRE_TOKEN) must not hold"},
		{[]string{"get", ""}, "get: the argument must not be empty"},
		{[]string{"complete", "", "--result", "1"}, "complete: the argument must not be empty"},
		{[]string{"create", ""}, "create: the argument must not be empty"},
	} {
		r := runTaskwire(t, append(tc.args, "--server", srv.URL)...).want(t, exitUsage)
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, r.stderr, tc.want)
		}
		if strings.Contains(r.stderr, "tw_secret") {
			t.Errorf("%v: stderr %q quotes the token", tc.args, r.stderr)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d calls reached the server", n)
	}
}

// TestCLIEnvironment: TASKWIRE_SERVER names the server when --server is
// absent.
func TestCLIEnvironment(t *testing.T) {
	b := cliSetup(t)
	t.Setenv("TASKWIRE_SERVER", strings.TrimPrefix(b.url, "http://"))
	t.Setenv("TASKWIRE_TOKEN", "anything") // sent, and ignored by a server without auth
	id := strings.TrimSpace(runTaskwire(t, "create", "from env").want(t, exitOK).stdout)
	if task, err := b.c.GetTask(t.Context(), id); err != nil || task.Text != "from env" {
		t.Fatalf("task %+v, %v", task, err)
	}
}

// TestCLIWorkers lists a registered worker and its task.
func TestCLIWorkers(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	b.cli(t, "workers").want(t, exitOK)
	if _, err := b.c.Register(t.Context(), taskwire.RegisterParams{ID: "w-table", Queues: []string{"q1"}}); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "q1", "x").want(t, exitOK).stdout)
	if _, err := b.c.ClaimTasks(t.Context(), taskwire.ClaimParams{WorkerID: "w-table"}); err != nil {
		t.Fatal(err)
	}
	out := b.cli(t, "workers").want(t, exitOK).stdout
	if !strings.Contains(out, "w-table") || !strings.Contains(out, "online") || !strings.Contains(out, "q1") || !strings.Contains(out, id) {
		t.Fatalf("workers:\n%s", out)
	}
	var res taskwire.WorkersResult
	if err := json.Unmarshal([]byte(b.cli(t, "workers", "--json").want(t, exitOK).stdout), &res); err != nil || len(res.Workers) != 1 {
		t.Fatalf("workers --json: %+v, %v", res, err)
	}
}

// TestCLIEvents follows the stream: with --after it replays the log, and
// it prints live events as they come.
func TestCLIEvents(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	ids := []string{}
	for _, text := range []string{"a", "b", "c"} {
		ids = append(ids, strings.TrimSpace(b.cli(t, "create", text).want(t, exitOK).stdout))
	}
	log, err := b.srv.Service().Store().ReadEvents(t.Context(), "", 10)
	if err != nil || len(log) != 3 {
		t.Fatalf("event log: %d events, %v", len(log), err)
	}
	out := b.cli(t, "events", "--after", log[0].ID, "--count", "2", "--json", "--types", "task.created").want(t, exitOK).stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], ids[1]) || !strings.Contains(lines[1], ids[2]) {
		t.Fatalf("replayed events:\n%s", out)
	}

	// Live: tasks keep coming until the command has seen two of one task.
	done := make(chan cliResult)
	go func() { done <- b.cli(t, "events", "--task-id", ids[0], "--count", "2") }()
	for i := 0; ; i++ {
		select {
		case r := <-done:
			r.want(t, exitOK)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 || !strings.Contains(lines[0], "task.updated") || !strings.Contains(lines[0], ids[0]) {
				t.Fatalf("live events:\n%s", r.stdout)
			}
			return
		case <-time.After(100 * time.Millisecond):
			b.cli(t, "create", "noise").want(t, exitOK)
			if _, err := b.c.UpdateTask(t.Context(), taskwire.UpdateParams{ID: ids[0],
				Updates: taskwire.TaskUpdates{Priority: client.Ptr(i % 100)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCLIWork turns a shell command into a worker: stdout completes
// (JSON when it parses, else a string), a non-zero exit fails with stderr
// and the status; the task comes on stdin as the server writes it.
func TestCLIWork(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	ids := map[string]string{}
	for _, text := range []string{"json", "text", "fail", "<b> & c"} {
		ids[text] = strings.TrimSpace(b.cli(t, "create", "--queue", "shell", text).want(t, exitOK).stdout)
	}
	script := `task=$(cat)
case "$task" in
*'"text":"json"'*) printf '{"id":"%s","attempt":%s}\n' "$TASKWIRE_TASK_ID" "$TASKWIRE_TASK_ATTEMPT" ;;
*'"text":"text"'*) echo "hello world" ;;
*'"text":"<b> & c"'*) echo "as sent" ;;
*) echo "  no such file  " >&2; exit 7 ;;
esac`
	r := b.cli(t, "work", "--queue", "shell", "--concurrency", "2", "--exit-when-idle", "--worker-id", "sh-1", "--", "sh", "-c", script).want(t, exitOK)
	if strings.Count(r.stderr, "attempt 1") != 4 {
		t.Errorf("per-task lines:\n%s", r.stderr)
	}
	want := map[string]struct {
		status        taskwire.Status
		result, error string
	}{
		"json": {taskwire.StatusCompleted, `{"id":"` + ids["json"] + `","attempt":1}`, ""},
		"text": {taskwire.StatusCompleted, `"hello world"`, ""},
		// The task reaches the command as the server writes it: <, > and
		// & as they are.
		"<b> & c": {taskwire.StatusCompleted, `"as sent"`, ""},
		"fail":    {taskwire.StatusFailed, "", "exit status 7: no such file"},
	}
	for text, w := range want {
		task, err := b.c.GetTask(t.Context(), ids[text])
		if err != nil || task.Status != w.status || string(task.Result) != w.result || task.Error != w.error {
			t.Errorf("%s: %s result %s error %q, want %s %s %q (%v)", text, task.Status, task.Result, task.Error,
				w.status, w.result, w.error, err)
		}
	}
}

// TestCLIBench runs the load generator on a small N and checks its
// report and that every task ends completed.
func TestCLIBench(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	r := b.cli(t, "bench", "--tasks", "60", "--workers", "3", "--batch", "7", "--queue", "benchq", "--json").want(t, exitOK)
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("report %s: %v", r.stdout, err)
	}
	if len(rep.Phases) != 3 || rep.EndToEnd.Tasks != 60 || rep.EndToEnd.TasksPerSec <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, p := range rep.Phases {
		if p.Tasks != 60 || p.Requests == 0 || p.P50Ms <= 0 || p.P50Ms > p.P95Ms || p.P95Ms > p.P99Ms {
			t.Errorf("phase %+v", p)
		}
	}
	if !strings.Contains(r.stderr, "create: 60/60 tasks") || !strings.Contains(r.stderr, "complete: 60/60 tasks") {
		t.Errorf("progress lines (not a terminal):\n%s", r.stderr)
	}
	list, err := b.c.ListTasks(t.Context(), taskwire.ListParams{Queue: "benchq", Status: taskwire.StatusCompleted})
	if err != nil || list.TotalCount != 60 {
		t.Fatalf("completed tasks in benchq: %d, %v", list.TotalCount, err)
	}
	ws, _ := b.c.Workers(t.Context())
	if len(ws.Workers) != 0 {
		t.Fatalf("bench left workers behind: %+v", ws.Workers)
	}
	text := b.cli(t, "bench", "--tasks", "10", "--workers", "2").want(t, exitOK).stdout
	if !strings.Contains(text, "end to end") || !strings.Contains(text, "p99 ms") {
		t.Fatalf("summary:\n%s", text)
	}
}

// TestCLIBenchInterrupted: a bench interrupted (SIGINT: its context ends)
// while it creates tasks, or while its workers claim them, deletes the
// tasks it created, so that none is left waiting in a queue nobody
// serves, and says so.
func TestCLIBenchInterrupted(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		phase string
		tasks string
		seen  taskwire.Status // interrupted once a task of the queue has it
	}{
		{"create", "100000", taskwire.StatusPending},
		{"claim", "5000", taskwire.StatusInProgress},
	} {
		t.Run(tc.phase, func(t *testing.T) {
			t.Parallel()
			b := cliSetup(t)
			queue := "bench-stopped-in-" + tc.phase
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan cliResult, 1)
			go func() {
				done <- runTaskwireCtx(ctx, "bench", "--server", b.url, "--tasks", tc.tasks, "--workers", "2", "--queue", queue)
			}()
			waitForTask(t, b, taskwire.ListParams{Queue: queue, Status: tc.seen, Limit: client.Ptr(1)})
			cancel()
			r := <-done
			list, err := b.c.ListTasks(t.Context(), taskwire.ListParams{Queue: queue})
			if err != nil || list.TotalCount != 0 {
				t.Fatalf("tasks left in the bench's queue after it was interrupted: %d, %v\nstderr:\n%s", list.TotalCount, err, r.stderr)
			}
			if r.code != exitServer || !strings.Contains(r.stderr, "taskwire: bench: interrupted") {
				t.Errorf("the interrupted bench: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "tasks it had created") {
				t.Errorf("the interrupted bench does not say it deleted its tasks:\n%s", r.stderr)
			}
		})
	}
}

// waitForTask waits until a task matches p, failing the test after 60 s
// (a bench creating its 5,000 tasks took 5 s alone, over 20 s beside the
// other packages' tests on two cores).
func waitForTask(t *testing.T, b *cliBundle, p taskwire.ListParams) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := b.c.ListTasks(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if list.TotalCount > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task %+v within 60s", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCLIWorkShutdown: on SIGTERM (the context ending) `work` lets running
// commands finish within --grace and leaves the other tasks in the queue;
// commands still running after the grace period have their tasks handed
// back, and so do they at once on a second SIGINT, the first having said
// so. Either way it exits 0 and nothing is completed twice.
func TestCLIWorkShutdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script, grace string
		interrupts          int // SIGINTs sent; 0: the context ends
		wantCompleted       int
	}{
		{"running commands finish", "sleep 0.5; echo done", "20s", 0, 2},
		{"slow commands are handed back", "exec sleep 30", "300ms", 0, 0},
		{"a second SIGINT hands them back at once", "exec sleep 30", "1h", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := cliSetup(t)
			for _, text := range []string{"a", "b", "c"} {
				b.cli(t, "create", "--queue", "slowq", text).want(t, exitOK)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan cliResult, 1)
			signals := make(chan chan<- os.Signal, 1)
			args := []string{"--server", b.url, "--queue", "slowq", "--concurrency", "2",
				"--grace", tc.grace, "--", "sh", "-c", tc.script}
			go func() {
				if tc.interrupts > 0 {
					done <- runWorkSignalled(ctx, signals, args...)
				} else {
					done <- runTaskwireCtx(ctx, append([]string{"work"}, args...)...)
				}
			}()
			for {
				l, err := b.c.ListTasks(t.Context(), taskwire.ListParams{Status: taskwire.StatusInProgress})
				if err != nil {
					t.Fatal(err)
				}
				if l.TotalCount == 2 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if tc.interrupts == 0 {
				cancel()
			} else {
				sigs := <-signals
				for range tc.interrupts {
					sigs <- os.Interrupt
				}
			}
			var r cliResult
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("work did not exit within 30s")
			}
			r.want(t, exitOK)
			if said := strings.Count(r.stderr, "Ctrl-C again"); tc.interrupts > 0 && said != 1 {
				t.Errorf("the first SIGINT printed %d lines about Ctrl-C, want 1:\n%s", said, r.stderr)
			}

			all, err := b.c.ListTasks(t.Context(), taskwire.ListParams{})
			if err != nil {
				t.Fatal(err)
			}
			completed := 0
			for _, task := range all.Tasks {
				switch task.Status {
				case taskwire.StatusCompleted:
					completed++
				case taskwire.StatusPending:
					if task.AssignedTo != "" {
						t.Errorf("%s pending but assigned to %s", task.Text, task.AssignedTo)
					}
				default:
					t.Errorf("%s: %s", task.Text, task.Status)
				}
			}
			if completed != tc.wantCompleted {
				t.Errorf("%d completed, want %d", completed, tc.wantCompleted)
			}
			log, err := b.srv.Service().Store().ReadEvents(t.Context(), "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range log {
				if e.Type == taskwire.EventTaskCompleted {
					n++
				}
			}
			if n != completed {
				t.Errorf("%d task.completed events for %d completed tasks", n, completed)
			}
		})
	}
}

// TestCLIEventsOutlastsOutage: once following, events waits out a server
// that stays away longer than the client's retries, then resumes after the
// last event it printed; a server unreachable from the start is exit 6.
func TestCLIEventsOutlastsOutage(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	first := strings.TrimSpace(b.cli(t, "create", "first").want(t, exitOK).stdout)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	var streams atomic.Int64
	outage := make(chan struct{})
	fr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			proxy.ServeHTTP(w, r)
			return
		}
		switch n := streams.Add(1); {
		case n == 1: // the first stream drops after a moment
			cx, cancel := context.WithTimeout(r.Context(), 300*time.Millisecond)
			defer cancel()
			proxy.ServeHTTP(w, r.WithContext(cx))
		case n <= 8: // then the server is away for more than 5 attempts
			if n == 8 {
				close(outage)
			}
			http.Error(w, "bad gateway", http.StatusBadGateway)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(fr.Close)

	done := make(chan cliResult, 1)
	go func() {
		done <- runTaskwire(t, "events", "--server", fr.URL, "--after", "0", "--count", "3", "--types", "task.created")
	}()
	select {
	case <-outage:
	case r := <-done:
		r.want(t, exitOK)
		t.Fatalf("events ended during the outage:\n%s", r.stdout)
	}
	second := strings.TrimSpace(b.cli(t, "create", "second").want(t, exitOK).stdout)
	third := strings.TrimSpace(b.cli(t, "create", "third").want(t, exitOK).stdout)
	r := (<-done).want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], first) || !strings.Contains(lines[1], second) || !strings.Contains(lines[2], third) {
		t.Fatalf("events across the outage:\n%s", r.stdout)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	runTaskwire(t, "events", "--server", down.URL).want(t, exitUnavailable)
}

// TestCLIEventsOutageBeforeAnyEvent: a stream that drops before any event
// arrived, followed by an outage longer than the client's retries, resumes
// from the position the server gave when it opened: the tasks created
// during the outage are all printed, once.
func TestCLIEventsOutageBeforeAnyEvent(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	target, err := url.Parse(b.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	var streams atomic.Int64
	dropped, created := make(chan struct{}), make(chan struct{})
	fr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/events" {
			proxy.ServeHTTP(w, r)
			return
		}
		switch n := streams.Add(1); {
		case n == 1: // open for a moment once the server answered, then dropped
			defer close(dropped) // ServeCut ends the cut stream with a panic
			servertest.ServeCut(w, r, target, 300*time.Millisecond)
		default: // then the server is away for more than 5 attempts, and
			// until the tasks are created
			select {
			case <-created:
				if n > 8 {
					proxy.ServeHTTP(w, r)
					return
				}
			default:
			}
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
	}))
	t.Cleanup(fr.Close)

	// Ended after a while, a follower that lost the events prints none.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stop := time.AfterFunc(20*time.Second, cancel)
	defer stop.Stop()
	done := make(chan cliResult, 1)
	go func() {
		done <- runTaskwireCtx(ctx, "events", "--server", fr.URL, "--count", "3", "--types", "task.created")
	}()
	<-dropped
	var ids []string
	for _, text := range []string{"first", "second", "third"} {
		ids = append(ids, strings.TrimSpace(b.cli(t, "create", text).want(t, exitOK).stdout))
	}
	close(created)
	r := (<-done).want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("events across the outage:\n%s", r.stdout)
	}
	for i, id := range ids {
		if !strings.Contains(lines[i], id) {
			t.Fatalf("line %d %q, want the task.created of %s", i, lines[i], id)
		}
	}
}

// TestCLIWorkMissingCommand: a command that cannot be found is a bad
// command line, found before any task is claimed and failed for it.
func TestCLIWorkMissingCommand(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := strings.TrimSpace(b.cli(t, "create", "keep me").want(t, exitOK).stdout)
	b.cli(t, "work", "--exit-when-idle", "--", "./no-such-command-here").want(t, exitUsage)
	if task, err := b.c.GetTask(t.Context(), id); err != nil || task.Status != taskwire.StatusPending || task.Attempt != 0 {
		t.Fatalf("task after work: %+v, %v; want pending, never claimed", task, err)
	}
}

// TestCLIWorkInterruptedWhileRegistering: SIGINT or SIGTERM before the
// worker could register is a normal end too.
func TestCLIWorkInterruptedWhileRegistering(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	runTaskwireCtx(ctx, "work", "--server", stuck.URL, "--", "cat").want(t, exitOK)
}

// TestCLIWorkInvalidUTF8: stdout that would be JSON but for bytes that are
// not UTF-8 does not parse as JSON, so it completes the task as a string.
func TestCLIWorkInvalidUTF8(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "utf", "latin-1").want(t, exitOK).stdout)
	b.cli(t, "work", "--queue", "utf", "--exit-when-idle", "--", "sh", "-c", `printf '"caf\351"'`).want(t, exitOK)
	task, err := b.c.GetTask(t.Context(), id)
	if err != nil || task.Status != taskwire.StatusCompleted || string(task.Result) != `"\"caf\ufffd\""` {
		t.Fatalf("task: %+v, %v; want completed with the text as a string", task, err)
	}
}

// TestCLIConnectionFlagsFirst: --server and --token also go before the
// command name, in both forms, and the command's own win over them.
func TestCLIConnectionFlagsFirst(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := strings.TrimSpace(runTaskwire(t, "--server", b.url, "--token", "anything", "create", "first").want(t, exitOK).stdout)
	if out := runTaskwire(t, "--server="+b.url, "list").want(t, exitOK).stdout; !strings.Contains(out, id) {
		t.Fatalf("list:\n%s", out)
	}
	runTaskwire(t, "-server", "http://127.0.0.1:1", "get", "--server", b.url, id).want(t, exitOK)
	runTaskwire(t, "--server", b.url, "get", "--server", "http://127.0.0.1:1", id).want(t, exitUnavailable)
	runTaskwire(t, "--server", b.url, "work", "--exit-when-idle", "--", "true").want(t, exitOK)
	if task, err := b.c.GetTask(t.Context(), id); err != nil || task.Status != taskwire.StatusCompleted {
		t.Fatalf("task after work: %+v, %v", task, err)
	}
	runTaskwire(t, "--server").want(t, exitUsage)
	runTaskwire(t, "--server", b.url).want(t, exitUsage)
	runTaskwire(t, "--token", "x", "serve").want(t, exitUsage)
	runTaskwire(t, "--bogus", "list").want(t, exitUsage)
}

// TestCLIWorkTokenRevoked: a worker whose token the server stops accepting
// while it runs exits 5 (here through its heartbeat, which comes every
// second, while its claim long-polls) rather than retry forever.
func TestCLIWorkTokenRevoked(t *testing.T) {
	t.Parallel()
	adminTok, adminLine := newToken(t, "--name", "ops", "--role", "admin")
	workerTok, workerLine := newToken(t, "--name", "w1", "--role", "worker", "--worker-id", "w1")
	path := filepath.Join(t.TempDir(), "tokens.json")
	writeTokens(t, path, adminLine, workerLine)
	tokens, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	_, url := servertest.Start(t, func(c *server.Config) { c.Tokens, c.WorkerTimeout = tokens, 3*time.Second })
	admin := client.New(url, client.Options{Token: adminTok})

	done := make(chan cliResult, 1)
	go func() {
		done <- runTaskwire(t, "--server", url, "--token", workerTok, "work", "--worker-id", "w1", "--", "true")
	}()
	for {
		ws, err := admin.Workers(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ws.Workers) == 1 && ws.Workers[0].Status == taskwire.WorkerOnline {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	writeTokens(t, path, adminLine)
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	// Without the fix, work retries until runTaskwire's minute is over
	// and exits 0.
	r := (<-done).want(t, exitNotAllowed)
	if !strings.Contains(r.stderr, "401") {
		t.Errorf("stderr does not name the refusal:\n%s", r.stderr)
	}
}

// TestCLIWorkTimeout: a command still running after --timeout is
// stopped (SIGTERM to its process group, which a trap cannot outlast
// beyond the kill that follows) and its task fails saying so; the worker
// goes on with the next task.
func TestCLIWorkTimeout(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	slow := strings.TrimSpace(b.cli(t, "create", "--queue", "slow", "--priority", "90", "slow").want(t, exitOK).stdout)
	fast := strings.TrimSpace(b.cli(t, "create", "--queue", "slow", "fast").want(t, exitOK).stdout)
	script := `case "$(cat)" in *'"text":"slow"'*) sleep 60 ;; *) echo ok ;; esac`
	b.cli(t, "work", "--queue", "slow", "--timeout", "300ms", "--exit-when-idle", "--", "sh", "-c", script).want(t, exitOK)
	task, err := b.c.GetTask(t.Context(), slow)
	if err != nil || task.Status != taskwire.StatusFailed || !strings.HasPrefix(task.Error, "timed out after 300ms") {
		t.Fatalf("slow task: %s %q, %v", task.Status, task.Error, err)
	}
	if task, err := b.c.GetTask(t.Context(), fast); err != nil || string(task.Result) != `"ok"` {
		t.Fatalf("fast task: %+v, %v", task, err)
	}
	b.cli(t, "work", "--timeout", "-1s", "--", "cat").want(t, exitUsage)
}

// TestCLIWorkNoGrace: --grace 0s gives the running commands no time after
// SIGINT or SIGTERM: their tasks are handed back at once, rather than
// after the worker's default grace period, and a negative --grace is a
// bad command line.
func TestCLIWorkNoGrace(t *testing.T) {
	t.Parallel()
	b := cliSetup(t)
	id := strings.TrimSpace(b.cli(t, "create", "--queue", "nograce", "slow").want(t, exitOK).stdout)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan cliResult, 1)
	go func() {
		done <- runTaskwireCtx(ctx, "work", "--server", b.url, "--queue", "nograce", "--grace", "0s",
			"--", "sh", "-c", "sleep 2; echo done")
	}()
	for {
		task, err := b.c.GetTask(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if task.Status == taskwire.StatusInProgress {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	(<-done).want(t, exitOK)
	if task, err := b.c.GetTask(t.Context(), id); err != nil || task.Status != taskwire.StatusPending {
		t.Fatalf("task after work: %+v, %v; want pending, handed back", task, err)
	}
	b.cli(t, "work", "--grace", "-1s", "--", "cat").want(t, exitUsage)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// shutdownLoad is clients creating, claiming and completing tasks while a
// server shuts down. It keeps what was acknowledged, and counts every
// answer by kind; an answer no client should ever get (-32603, a body that
// is not JSON-RPC) is kept as bad.
type shutdownLoad struct {
	mu        sync.Mutex
	created   map[string]string // id -> text
	completed map[string]string // id -> result
	cut       map[string]bool   // texts of creates whose connection was cut before an answer
	kinds     map[string]int
	bad       []string
}

func newShutdownLoad() *shutdownLoad {
	return &shutdownLoad{created: map[string]string{}, completed: map[string]string{}, cut: map[string]bool{}, kinds: map[string]int{}}
}

// answer counts the answer err of method and reports whether it is a
// success.
func (l *shutdownLoad) answer(method string, err error) bool {
	kind, bad := answerKind(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kinds[method+" "+kind]++
	if bad {
		l.bad = append(l.bad, fmt.Sprintf("%s: %v", method, err))
	}
	return err == nil
}

// kindCut is the kind of a call whose connection closed before an answer.
const kindCut = "cut before an answer"

// answerKind names the kind of an answer: a success, a JSON-RPC error by
// code, or a connection refused or cut. -32603 and anything else is bad.
func answerKind(err error) (string, bool) {
	var rpcErr *taskwire.Error
	switch {
	case err == nil:
		return "ok", false
	case errors.Is(err, context.Canceled):
		return "canceled by the test", false
	case errors.As(err, &rpcErr):
		return fmt.Sprint(rpcErr.Code), rpcErr.Code == taskwire.CodeInternalError
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", false
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF),
		strings.Contains(err.Error(), "server closed idle connection"): // net/http's, unexported
		return kindCut, false
	}
	return "other", true
}

// client runs one client until ctx ends: it creates a task through
// create(), then claims and completes one through work(), as worker.
func (l *shutdownLoad) client(ctx context.Context, worker string, create, work func() *rpctest.Client) {
	for i := 0; ctx.Err() == nil; i++ {
		cl := work()
		if !l.answer("system.register", cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": worker}, nil)) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		text := fmt.Sprintf("%s job %d", worker, i)
		var tk taskwire.Task
		err := create().Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": text, "leaseMs": 2000}, &tk)
		l.mu.Lock()
		if kind, _ := answerKind(err); kind == kindCut {
			l.cut[text] = true
		}
		l.mu.Unlock()
		if l.answer("task.create", err) {
			l.mu.Lock()
			l.created[tk.ID] = text
			l.mu.Unlock()
		}
		var res taskwire.ClaimResult
		if !l.answer("task.claim", cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": worker}, &res)) || !res.Claimed || res.Task == nil {
			continue
		}
		result := fmt.Sprintf(`{"by":%q,"n":%d}`, worker, i)
		err = cl.Call(ctx, taskwire.MethodTaskComplete, map[string]any{
			"id": res.TaskID, "workerId": worker, "attempt": res.Task.Attempt, "result": json.RawMessage(result)}, nil)
		if l.answer("task.complete", err) {
			l.mu.Lock()
			l.completed[res.TaskID] = result
			l.mu.Unlock()
		}
	}
}

// until waits for n acknowledged completions, up to 20s.
func (l *shutdownLoad) until(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		done := len(l.completed)
		l.mu.Unlock()
		if done >= n {
			return
		}
	}
	t.Fatalf("fewer than %d completions acknowledged within 20s", n)
}

// check fails the test on a bad answer, and logs the answers by kind.
func (l *shutdownLoad) check(t *testing.T) {
	t.Helper()
	kinds := make([]string, 0, len(l.kinds))
	for k, n := range l.kinds {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("answers: %v", kinds)
	if len(l.bad) > 0 {
		t.Errorf("%d answers no client should get, e.g. %v", len(l.bad), l.bad[:min(5, len(l.bad))])
	}
}

// verify checks through cl that every acknowledged create is there with
// its text, and every acknowledged completion with its result; with
// finished, also that every acknowledged task is completed.
func (l *shutdownLoad) verify(t *testing.T, cl *rpctest.Client, finished bool) {
	t.Helper()
	lost := 0
	for id, text := range l.created {
		var tk taskwire.Task
		if err := cl.Call(context.Background(), taskwire.MethodTaskGet, map[string]any{"id": id}, &tk); err != nil {
			t.Errorf("acknowledged create %s lost: %v", id, err)
			lost++
			continue
		}
		if tk.Text != text {
			t.Errorf("task %s text = %q, want %q", id, tk.Text, text)
		}
		if finished && tk.Status != taskwire.StatusCompleted {
			t.Errorf("task %s is %s, want completed", id, tk.Status)
		}
	}
	for id, result := range l.completed {
		var tk taskwire.Task
		err := cl.Call(context.Background(), taskwire.MethodTaskGet, map[string]any{"id": id}, &tk)
		if err != nil || tk.Status != taskwire.StatusCompleted || !sameJSON(tk.Result, result) {
			t.Errorf("acknowledged completion of %s lost: %v, status %s, result %s, want %s", id, err, tk.Status, tk.Result, result)
			lost++
		}
	}
	t.Logf("%d acknowledged creates, %d acknowledged completions, %d lost", len(l.created), len(l.completed), lost)
}

// unanswered checks through cl that no create whose connection was cut
// made a task: a request the server read is one it finishes and answers.
func (l *shutdownLoad) unanswered(t *testing.T, cl *rpctest.Client) {
	t.Helper()
	found := 0
	for offset := 0; ; offset += 1000 {
		var page taskwire.ListResult
		err := cl.Call(context.Background(), taskwire.MethodTaskList, map[string]any{"limit": 1000, "offset": offset}, &page)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range page.Tasks {
			if l.cut[tk.Text] {
				t.Errorf("task %s (%q) was created, but its create's connection was cut without an answer", tk.ID, tk.Text)
				found++
			}
		}
		if !page.HasMore {
			break
		}
	}
	t.Logf("%d creates cut without an answer, %d of them made a task", len(l.cut), found)
}

func sameJSON(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil &&
		fmt.Sprint(a) == fmt.Sprint(b)
}

// terminate sends SIGTERM to c and waits, up to 15s, for it to exit 0.
func terminate(t *testing.T, c *child) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("exit after SIGTERM under load: %v, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit within 15s of SIGTERM under load")
	}
}

// TestSIGTERMUnderLoadEmbedded sends SIGTERM while 20 clients create,
// claim and complete: the process exits 0, no call is answered -32603 or
// garbled, and after a restart on the same data every acknowledged create
// and completion is there.
func TestSIGTERMUnderLoadEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	dir := t.TempDir()
	srv := startChild(t, "--data", dir, "--no-rate-limit")
	cl := rpctest.New(srv.URL)
	l := newShutdownLoad()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			l.client(ctx, fmt.Sprintf("sw%d", i), func() *rpctest.Client { return cl }, func() *rpctest.Client { return cl })
		})
	}
	l.until(t, 200)
	terminate(t, srv)
	cancel()
	wg.Wait()
	l.check(t)
	after := startChild(t, "--data", dir, "--no-rate-limit")
	l.verify(t, rpctest.New(after.URL), false)
	l.unanswered(t, rpctest.New(after.URL))
}

// TestDistributedSIGTERMUnderLoad sends SIGTERM to one of two distributed
// processes while 20 clients create through one and claim and complete
// through the other: the process exits 0, no call is answered -32603 or
// garbled, the other process finishes every acknowledged task, every
// acknowledged completion keeps its result, in PostgreSQL too, and both
// stores agree.
func TestDistributedSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	a, b := env.start(t, ""), env.start(t, "")
	ca, cb := rpctest.New(a.URL), rpctest.New(b.URL)
	l := newShutdownLoad()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var exited atomic.Bool
	through := func(c *rpctest.Client) func() *rpctest.Client {
		return func() *rpctest.Client {
			if exited.Load() {
				return cb
			}
			return c
		}
	}
	for i := range 20 {
		first, second := ca, cb
		if i%2 == 1 {
			first, second = cb, ca
		}
		wg.Go(func() { l.client(ctx, fmt.Sprintf("sw%d", i), through(first), through(second)) })
	}
	l.until(t, 200)
	terminate(t, a)
	exited.Store(true)
	l.mu.Lock()
	atExit := len(l.completed)
	l.mu.Unlock()
	// Once A is gone, the whole load goes through B.
	l.until(t, atExit+100)
	cancel()
	wg.Wait()
	l.check(t)
	finish(t, cb, l)
	l.verify(t, cb, true)
	l.unanswered(t, cb)
	if err := cb.Call(context.Background(), taskwire.MethodTaskList, map[string]any{"limit": 1}, nil); err != nil {
		t.Fatal(err) // task.list applies the outbox
	}
	byStatus := env.agree(t)
	t.Logf("PostgreSQL holds by status: %v", byStatus)
	checkCompletedInPostgres(t, env, l)
}

// finish claims and completes through cl, as one worker, until every task
// l created is completed (claims cut short by the shutdown come back when
// their 2s lease runs out), up to 30s. A completion whose answer the test
// gave up on may have been made: such a task counts as finished.
func finish(t *testing.T, cl *rpctest.Client, l *shutdownLoad) {
	t.Helper()
	ctx := context.Background()
	if err := cl.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "finisher"}, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if len(l.unfinished(t, cl)) == 0 {
			return
		}
		var res taskwire.ClaimResult
		err := cl.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "finisher", "maxTasks": 10, "waitMs": 500}, &res)
		if err != nil {
			t.Fatalf("claim on the surviving process: %v", err)
		}
		for _, tk := range res.Tasks {
			err := cl.Call(ctx, taskwire.MethodTaskComplete, map[string]any{
				"id": tk.ID, "workerId": "finisher", "attempt": tk.Attempt, "result": map[string]any{"by": "finisher"}}, nil)
			if err != nil {
				t.Fatalf("complete on the surviving process: %v", err)
			}
		}
	}
	t.Fatalf("the surviving process did not finish every acknowledged task within 30s: %v", l.unfinished(t, cl))
}

// unfinished is the acknowledged tasks cl does not show completed.
func (l *shutdownLoad) unfinished(t *testing.T, cl *rpctest.Client) []string {
	t.Helper()
	var left []string
	for id := range l.created {
		if _, ok := l.completed[id]; ok {
			continue
		}
		var tk taskwire.Task
		if err := cl.Call(context.Background(), taskwire.MethodTaskGet, map[string]any{"id": id}, &tk); err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if tk.Status != taskwire.StatusCompleted {
			left = append(left, id+" "+string(tk.Status))
		}
	}
	return left
}

// checkCompletedInPostgres checks that PostgreSQL holds every acknowledged
// completion, with a result.
func checkCompletedInPostgres(t *testing.T, env *distEnv, l *shutdownLoad) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testPostgresURL+"&search_path="+env.name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id, status, result_size FROM tasks WHERE NOT deleted")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		status string
		size   int64
	}
	pg := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.status, &r.size); err != nil {
			t.Fatal(err)
		}
		pg[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for id := range l.completed {
		if got, ok := pg[id]; !ok || got.status != "completed" || got.size == 0 {
			t.Errorf("PostgreSQL holds %s as %+v (present %v), want completed with a result", id, got, ok)
		}
	}
}

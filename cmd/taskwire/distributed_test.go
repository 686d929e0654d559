package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// fleet is a distributed workload: tasks created through the servers, and
// workers spread over them claiming and completing them. It counts what a
// user would check: acknowledged creates, claims and successful
// completions per task.
type fleet struct {
	mu          sync.Mutex
	acked       map[string]bool
	claims      map[string]int
	completions map[string]int
	left        atomic.Int64 // acknowledged tasks not completed yet
	// taskParams are added to the params of each create.
	taskParams map[string]any
}

func newFleet() *fleet {
	return &fleet{acked: map[string]bool{}, claims: map[string]int{}, completions: map[string]int{}}
}

// create creates n tasks through the clients in turn, in batches of 100;
// a create answered -32001 is tried again.
func (f *fleet) create(ctx context.Context, t *testing.T, clients []*rpctest.Client, n int) {
	t.Helper()
	for i, made := 0, 0; made < n; i++ {
		size := min(100, n-made)
		calls := make([]rpctest.Call, size)
		for j := range calls {
			params := map[string]any{"text": fmt.Sprintf("task %d", made+j)}
			for k, v := range f.taskParams {
				params[k] = v
			}
			calls[j] = rpctest.Call{Method: taskwire.MethodTaskCreate, Params: params}
		}
		resps, err := clients[i%len(clients)].Batch(ctx, calls)
		if err != nil {
			t.Fatalf("create batch: %v", err)
		}
		for _, r := range resps {
			if r.Error != nil {
				if r.Error.Code != taskwire.CodeUnavailable {
					t.Fatalf("create: %v", r.Error)
				}
				continue
			}
			var tk taskwire.Task
			if err := json.Unmarshal(r.Result, &tk); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			f.acked[tk.ID] = true
			f.mu.Unlock()
			f.left.Add(1)
			made++
		}
	}
}

// work runs worker id on cl until every acknowledged task is completed or
// ctx ends. A worker Redis forgot registers again; a completion answered
// -32001 is retried, heartbeating meanwhile.
func (f *fleet) work(ctx context.Context, id string, cl func() *rpctest.Client) {
	register := func() { _ = cl().Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": id}, nil) }
	register()
	for ctx.Err() == nil && f.left.Load() > 0 {
		var res taskwire.ClaimResult
		err := cl().Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": id, "maxTasks": 10, "waitMs": 500}, &res)
		var rpcErr *taskwire.Error
		if errors.As(err, &rpcErr) && rpcErr.Code == taskwire.CodeInvalidParams {
			register()
			continue
		}
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for _, tk := range res.Tasks {
			f.mu.Lock()
			f.claims[tk.ID]++
			f.mu.Unlock()
			f.complete(ctx, cl, id, tk)
		}
	}
}

func (f *fleet) complete(ctx context.Context, cl func() *rpctest.Client, worker string, tk *taskwire.Task) {
	params := map[string]any{"id": tk.ID, "workerId": worker, "attempt": tk.Attempt, "result": map[string]any{"by": worker}}
	for ctx.Err() == nil {
		err := cl().Call(ctx, taskwire.MethodTaskComplete, params, nil)
		var rpcErr *taskwire.Error
		if errors.As(err, &rpcErr) && rpcErr.Code != taskwire.CodeUnavailable || err == nil {
			if err == nil {
				f.mu.Lock()
				f.completions[tk.ID]++
				first := f.completions[tk.ID] == 1 && f.acked[tk.ID]
				f.mu.Unlock()
				if first {
					f.left.Add(-1)
				}
			}
			return // refused (fenced out, lease lost): the task is someone else's now
		}
		// Unavailable: keep the worker and its lease alive, as a worker
		// runtime does, while the completion waits for PostgreSQL.
		_ = cl().Call(ctx, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": worker}, nil)
		time.Sleep(200 * time.Millisecond)
	}
}

// run starts n workers, worker i on the client clientOf(i) returns at each
// call, and waits until every acknowledged task is completed or timeout.
func (f *fleet) run(t *testing.T, n int, timeout time.Duration, clientOf func(i int) *rpctest.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f.work(ctx, fmt.Sprintf("w%d", i), func() *rpctest.Client { return clientOf(i) }) })
	}
	wg.Wait()
}

// report logs and checks the counts of acknowledged tasks lost (never
// completed) and of duplicated completions; with once, also that no task
// was claimed twice.
func (f *fleet) report(t *testing.T, once bool) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	lost, dup, reclaimed := 0, 0, 0
	for id := range f.acked {
		if f.completions[id] == 0 {
			lost++
		}
	}
	for _, n := range f.completions {
		if n > 1 {
			dup++
		}
	}
	for _, n := range f.claims {
		if n > 1 {
			reclaimed++
		}
	}
	t.Logf("%d acknowledged tasks: %d lost, %d duplicated completions, %d claimed more than once",
		len(f.acked), lost, dup, reclaimed)
	if lost > 0 || dup > 0 {
		t.Errorf("acknowledged tasks lost: %d, duplicated completions: %d; want 0 and 0", lost, dup)
	}
	if once && reclaimed > 0 {
		t.Errorf("%d tasks were claimed more than once without being requeued", reclaimed)
	}
}

// TestDistributedWorkersAcrossProcesses runs two server processes on one
// Redis and one PostgreSQL; 50 workers spread over them claim and complete
// 20,000 tasks (2,000 with -short): each is claimed once and completed
// once, and both stores agree at the end.
func TestDistributedWorkersAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	n := 20_000
	if testing.Short() {
		n = 2000
	}
	servers := []*rpctest.Client{rpctest.New(env.start(t, "").URL), rpctest.New(env.start(t, "").URL)}
	f := newFleet()
	start := time.Now()
	f.create(context.Background(), t, servers, n)
	f.run(t, 50, 5*time.Minute, func(i int) *rpctest.Client { return servers[i%2] })
	t.Logf("%d tasks created, claimed and completed through 2 processes in %s", n, time.Since(start).Round(time.Millisecond))
	f.report(t, true)
	if got := env.agree(t); got["completed"] != n {
		t.Errorf("PostgreSQL holds %v, want %d completed", got, n)
	}
}

// TestDistributedUnregisterEndsLongPollAcrossProcesses: a worker
// unregistered through one process has its long poll waiting in another
// end at once with "Worker not registered", not when the poll next
// shows the worker's life (a third of the worker timeout: 30 s here) or
// when its wait runs out (20 s).
func TestDistributedUnregisterEndsLongPollAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	a, b := env.start(t, "", "--worker-timeout", "90s"), env.start(t, "", "--worker-timeout", "90s")
	ca, cb := rpctest.New(a.URL), rpctest.New(b.URL)
	ctx := context.Background()
	if err := cb.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "leaver"}, nil); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() {
		ended <- cb.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "leaver", "waitMs": 20000}, nil)
	}()
	time.Sleep(300 * time.Millisecond) // let the claim start waiting
	select {
	case err := <-ended:
		t.Fatalf("the long poll ended before its worker was unregistered: %v", err)
	default:
	}
	if err := ca.Call(ctx, taskwire.MethodSystemUnregister, map[string]any{"id": "leaver"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		var e *taskwire.Error
		if !errors.As(err, &e) || e.Code != taskwire.CodeInvalidParams || e.Message != "Worker not registered: leaver" {
			t.Fatalf("long poll of a worker unregistered elsewhere ended with %v; want -32602 Worker not registered: leaver", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long poll in process B still waiting 5s after its worker was unregistered through process A")
	}
}

// TestDistributedWakesAndEventsAcrossProcesses: a task created through one
// process wakes a long poll waiting in another, and its event reaches an
// SSE subscriber of the other.
func TestDistributedWakesAndEventsAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	a, b := env.start(t, ""), env.start(t, "")
	ca, cb := rpctest.New(a.URL), rpctest.New(b.URL)
	ctx := context.Background()

	events := make(chan string, 16)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.URL+"/events?types=task.created", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- data
			}
		}
	}()
	if err := cb.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "waiter"}, nil); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan taskwire.ClaimResult, 1)
	go func() {
		var res taskwire.ClaimResult
		if err := cb.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "waiter", "waitMs": 20000}, &res); err != nil {
			t.Error(err)
		}
		claimed <- res
	}()
	time.Sleep(300 * time.Millisecond) // let the claim start waiting
	var tk taskwire.Task
	if err := ca.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "across"}, &tk); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	select {
	case res := <-claimed:
		if !res.Claimed || res.TaskID != tk.ID {
			t.Fatalf("long poll in the other process got %+v, want %s", res, tk.ID)
		}
		t.Logf("long poll in process B woke %s after a create in process A", time.Since(created).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("long poll in process B did not wake within 10s of a create in process A")
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case data := <-events:
			if strings.Contains(data, tk.ID) {
				return
			}
		case <-deadline:
			t.Fatal("SSE subscriber of process B did not get task.created of process A within 10s")
		}
	}
}

// eventFollower follows a server's event stream for the rest of a test.
type eventFollower struct {
	positions chan string
	events    chan taskwire.Event
}

// followEvents follows the task.created events of the server at url,
// resuming after after.
func followEvents(t *testing.T, url, after string) *eventFollower {
	t.Helper()
	f := &eventFollower{positions: make(chan string, 64), events: make(chan taskwire.Event, 64)}
	p := client.EventsParams{Types: []taskwire.EventType{taskwire.EventTaskCreated}, After: after,
		OnPosition: func(id string) { f.positions <- id }}
	go func() {
		_ = client.New(url, client.Options{}).Events(t.Context(), p, func(e taskwire.Event) error {
			f.events <- e
			return nil
		})
	}()
	return f
}

// position returns the next resume point the follower was told of.
func (f *eventFollower) position(t *testing.T) string {
	t.Helper()
	select {
	case at := <-f.positions:
		return at
	case <-time.After(10 * time.Second):
		t.Fatal("no position within 10s")
	}
	return ""
}

// until returns the events up to the task.created of taskID.
func (f *eventFollower) until(t *testing.T, taskID string) []string {
	t.Helper()
	var ids []string
	for deadline := time.After(10 * time.Second); ; {
		select {
		case e := <-f.events:
			ids = append(ids, e.ID)
			if strings.Contains(string(e.Payload), taskID) {
				return ids
			}
		case <-deadline:
			t.Fatalf("no task.created of %s within 10s (got %v)", taskID, ids)
		}
	}
}

// TestDistributedEventsPosition: the position a stream of one process
// starts at is a resume point in every process: a follower that resumes
// from it in another process gets exactly the events the first stream
// got, "0" included, the position of an empty log.
func TestDistributedEventsPosition(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	a, b := env.start(t, ""), env.start(t, "")
	ca := rpctest.New(a.URL)
	create := func() string {
		var tk taskwire.Task
		if err := ca.Call(context.Background(), taskwire.MethodTaskCreate, map[string]any{"text": "x"}, &tk); err != nil {
			t.Fatal(err)
		}
		return tk.ID
	}

	onB := followEvents(t, b.URL, "")
	if at := onB.position(t); at != "0" {
		t.Fatalf("position on an empty log %q, want 0", at)
	}
	var last string
	for range 3 {
		last = create()
	}
	want := onB.until(t, last)

	live := followEvents(t, b.URL, "")
	at := live.position(t)
	last = create()
	wantLive := live.until(t, last)
	for _, tc := range []struct {
		after string
		want  []string
	}{{"0", append(want, wantLive[len(wantLive)-1])}, {at, wantLive}} {
		got := followEvents(t, a.URL, tc.after).until(t, last)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("resumed in the other process after %s: %v, want %v", tc.after, got, tc.want)
		}
	}
}

// TestDistributedRedisLost runs FLUSHALL mid-run on a Redis of the test's
// own: every acknowledged task is claimable again or final, and each is
// completed once.
func TestDistributedRedisLost(t *testing.T) {
	t.Parallel()
	env := newPrivateRedisEnv(t)
	srv := rpctest.New(env.start(t, "").URL)
	f := newFleet()
	f.create(context.Background(), t, []*rpctest.Client{srv}, 1000)
	go func() {
		for f.left.Load() > 700 {
			time.Sleep(10 * time.Millisecond)
		}
		if err := env.rdb.FlushAll(context.Background()).Err(); err != nil {
			t.Error(err)
		}
		t.Logf("FLUSHALL with %d tasks left", f.left.Load())
	}()
	f.run(t, 10, 2*time.Minute, func(int) *rpctest.Client { return srv })
	f.report(t, false)
	env.agree(t)
}

// TestDistributedRateLimitAcrossProcesses: in distributed mode a rate
// limit holds across processes: 5 task.list calls a minute for one
// principal, spent 3 in process A and 2 in process B, leave none for a
// sixth in either, which is -32000 with retryAfterMs.
func TestDistributedRateLimitAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	args := []string{"--redis", env.redisURL(), "--postgres", env.pgURL, "--rate-limit", "task.list=5/1m"}
	a, b := startChild(t, args...), startChild(t, args...)
	ctx := context.Background()
	for i, cl := range []*rpctest.Client{rpctest.New(a.URL), rpctest.New(a.URL), rpctest.New(a.URL), rpctest.New(b.URL), rpctest.New(b.URL)} {
		if err := cl.Call(ctx, taskwire.MethodTaskList, map[string]any{}, nil); err != nil {
			t.Fatalf("call %d within the limit: %v", i+1, err)
		}
	}
	for name, url := range map[string]string{"A": a.URL, "B": b.URL} {
		err := rpctest.New(url).Call(ctx, taskwire.MethodTaskList, map[string]any{}, nil)
		var e *taskwire.Error
		if !errors.As(err, &e) || e.Code != taskwire.CodeRateLimited {
			t.Fatalf("sixth call, in process %s: %v, want -32000", name, err)
		}
		if data, _ := e.Data.(map[string]any); data["retryAfterMs"] == nil {
			t.Errorf("process %s: -32000 without retryAfterMs: %+v", name, e.Data)
		}
	}
}

// TestDistributedMetricsRatesAcrossProcesses: system.metrics in either
// process counts the claims and completions served by both: claims and
// completions through one, read in the other, once that one has shared
// them (at its next sweep); a retried completion counts in neither.
func TestDistributedMetricsRatesAcrossProcesses(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	a, b := env.start(t, ""), env.start(t, "")
	ca, cb := rpctest.New(a.URL), rpctest.New(b.URL)
	ctx := context.Background()
	if err := ca.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": "w1"}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := ca.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": fmt.Sprint("task ", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var claim taskwire.ClaimResult
	if err := ca.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "maxTasks": 4}, &claim); err != nil || len(claim.Tasks) != 4 {
		t.Fatalf("claim: %d tasks, %v; want 4", len(claim.Tasks), err)
	}
	for _, tk := range claim.Tasks[:2] {
		if err := ca.Call(ctx, taskwire.MethodTaskComplete, map[string]any{"id": tk.ID, "workerId": "w1", "attempt": tk.Attempt}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A retry of a completion that succeeded, in the other process, changes
	// nothing and is not counted again.
	retry := map[string]any{"id": claim.Tasks[0].ID, "workerId": "w1", "attempt": claim.Tasks[0].Attempt}
	if err := cb.Call(ctx, taskwire.MethodTaskComplete, retry, nil); err != nil {
		t.Fatalf("retried completion: %v", err)
	}
	want := [2]float64{4.0 / 60, 2.0 / 60}
	var got [2]float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var m taskwire.MetricsResult
		if err := cb.Call(ctx, taskwire.MethodSystemMetrics, map[string]any{}, &m); err != nil {
			t.Fatal(err)
		}
		if got = [2]float64{m.ClaimRatePerSec, m.CompletionRatePerSec}; got == want {
			break
		}
	}
	if got != want {
		t.Errorf("system.metrics of the other process: claim and completion rates %v, want %v", got, want)
	}
	var m taskwire.MetricsResult
	if err := ca.Call(ctx, taskwire.MethodSystemMetrics, map[string]any{}, &m); err != nil {
		t.Fatal(err)
	}
	if got := [2]float64{m.ClaimRatePerSec, m.CompletionRatePerSec}; got != want {
		t.Errorf("system.metrics of the serving process: claim and completion rates %v, want %v", got, want)
	}
}

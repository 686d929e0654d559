package redispg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// TestDifferential drives a distributed store and an embedded one with the
// same pseudo-random operations, at the same times and on the same ids,
// and fails at the first operation whose outcome (value, error kind,
// events) differs, printing the operations that lead to it.
func TestDifferential(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 4, 5, 6, 7, 8} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runDifferential(t, seed, 400)
		})
	}
}

func runDifferential(t *testing.T, seed uint64, n int) {
	dist := newTestStore(t, Options{ReconcileInterval: -1})
	emb, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "taskwire.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	g := &opGen{rng: rand.New(rand.NewPCG(seed, seed)), now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), ref: emb}
	sides := []*diffSide{{st: dist}, {st: emb}}
	var done []string
	for range n {
		o := g.next()
		done = append(done, o.desc)
		var outs [2]string
		for i, side := range sides {
			outs[i] = side.do(t.Context(), o)
		}
		if diff := cmp.Diff(outs[1], outs[0]); diff != "" {
			t.Fatalf("seed %d: op %d differs (-embedded +distributed):\n%s\nops:\n%s",
				seed, len(done), diff, strings.Join(done, "\n"))
		}
	}
}

// diffSide is one store under test and where its event log was read up to.
type diffSide struct {
	st        store.Store
	lastEvent string
}

// do runs o and returns its outcome and events in a form both backends
// must agree on.
func (s *diffSide) do(ctx context.Context, o diffOp) string {
	v, err := o.run(ctx, s.st)
	out := "value: " + canonical(v) + "\nerror: " + errorKind(err) + "\nevents:\n"
	evs, err := s.st.ReadEvents(ctx, s.lastEvent, 1000)
	if err != nil {
		return out + "read events: " + err.Error()
	}
	var lines []string
	for _, e := range evs {
		s.lastEvent = e.ID
		lines = append(lines, fmt.Sprintf("%s %d %s %s %s", e.Type, e.Timestamp, e.TaskID,
			canonical(e.Payload), canonical(e.Metadata)))
	}
	slices.Sort(lines)
	return out + strings.Join(lines, "\n")
}

// canonical encodes v as JSON with objects' keys sorted, so that values
// differing only in encoding compare equal.
func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return "undecodable: " + string(b)
	}
	b, _ = json.Marshal(emptyAsNull(x))
	return string(b)
}

// emptyAsNull replaces the empty arrays in x with null: a backend may
// answer either for "none".
func emptyAsNull(x any) any {
	switch v := x.(type) {
	case []any:
		if len(v) == 0 {
			return nil
		}
		for i := range v {
			v[i] = emptyAsNull(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = emptyAsNull(v[k])
		}
	}
	return x
}

// errorKind names err by what the contract fixes of it.
func errorKind(err error) string {
	var tnf *store.TaskNotFoundError
	var wnf *store.WorkerNotFoundError
	var c *store.ConflictError
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &tnf):
		return "task not found " + tnf.ID
	case errors.As(err, &wnf):
		return "worker not found " + wnf.ID
	case errors.As(err, &c):
		return fmt.Sprintf("conflict %s status=%s assignedTo=%q", c.TaskID, c.Status, c.AssignedTo)
	case errors.Is(err, store.ErrTooLarge):
		return "too large"
	case errors.Is(err, store.ErrNoResult):
		return "no result"
	}
	return "other: " + err.Error()
}

// diffOp is one operation, with a description that reproduces it.
type diffOp struct {
	desc string
	run  func(context.Context, store.Store) (any, error)
}

// opGen makes random operations on a few tasks, workers and queues, at a
// clock that only moves forward.
type opGen struct {
	rng   *rand.Rand
	now   time.Time
	tasks int
	// ref is the store the generator peeks at to aim calls at a task's
	// current worker and attempt.
	ref store.Store
}

var (
	diffWorkers  = []string{"w1", "w2", "w3"}
	diffQueues   = []string{taskwire.DefaultQueue, "q1"}
	diffMetadata = []string{`{"a":1}`, `{"a":null,"b":"x"}`, `{"c":[1,2]}`, `{}`,
		`{"big":"` + strings.Repeat("m", 40<<10) + `"}`, `{"big2":"` + strings.Repeat("n", 30<<10) + `"}`}
	diffResults = []string{`{"r":1}`, `[1,2]`, `"s"`, ``, `"` + strings.Repeat("r", 70<<10) + `"`}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *opGen) next() diffOp {
	if g.rng.IntN(3) > 0 { // a third of the operations share a time with the one before
		g.now = g.now.Add(time.Duration(g.rng.IntN(1500)) * time.Millisecond)
	}
	kinds := []func() diffOp{
		g.create, g.create, g.create, g.claim, g.claim, g.claim, g.update, g.update, g.complete, g.complete, g.complete,
		g.assign, g.unassign, g.remove, g.register, g.register, g.heartbeat, g.unregister, g.sweep, g.sweep,
		g.list, g.get, g.workers, g.stats, g.result, g.taskEvents,
	}
	return pick(g.rng, kinds)()
}

// taskID is an existing task's id, or now and then one never created.
func (g *opGen) taskID() string {
	return fmt.Sprintf("t-%026d", 1+g.rng.IntN(g.tasks+1))
}

// liveTaskID is, two times in three, the id of an in_progress task when
// there is one, else taskID.
func (g *opGen) liveTaskID() string {
	if g.rng.IntN(3) > 0 {
		tasks, _, err := g.ref.ListTasks(context.Background(), store.ListTasksParams{Status: taskwire.StatusInProgress, Limit: 1000})
		if err == nil && len(tasks) > 0 {
			return pick(g.rng, tasks).ID
		}
	}
	return g.taskID()
}

func (g *opGen) worker() string { return pick(g.rng, diffWorkers) }

// maybeWorker is a worker, or "" (an admin's call).
func (g *opGen) maybeWorker() string {
	if g.rng.IntN(2) == 0 {
		return ""
	}
	return g.worker()
}

func (g *opGen) attempt() *int {
	if g.rng.IntN(2) == 0 {
		return nil
	}
	a := g.rng.IntN(4)
	return &a
}

func (g *opGen) queues() []string {
	return pick(g.rng, [][]string{nil, {taskwire.DefaultQueue}, {"q1"}, diffQueues})
}

func ptrString(p *int) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func (g *opGen) create() diffOp {
	g.tasks++
	now := g.now
	tk := taskwire.Task{
		ID: fmt.Sprintf("t-%026d", g.tasks), Queue: pick(g.rng, diffQueues), Text: fmt.Sprintf("task %d", g.tasks),
		Status: taskwire.StatusPending, Priority: pick(g.rng, []int{0, 50, 50, 100}),
		MaxAttempts: 1 + g.rng.IntN(3), LeaseMs: int64(1000 * (1 + g.rng.IntN(5))),
		RunAt: now.Add(time.Duration(pick(g.rng, []int{0, 0, 2000})) * time.Millisecond), CreatedAt: now, UpdatedAt: now,
	}
	if g.rng.IntN(2) == 0 {
		tk.Metadata = json.RawMessage(pick(g.rng, diffMetadata))
	}
	key := pick(g.rng, []string{"", "", "k1", "k2"})
	p := store.CreateTaskParams{Task: tk, IdempotencyKey: key, IdempotencyWindow: 20 * time.Second, By: "p", Now: now}
	return diffOp{
		desc: fmt.Sprintf("create %s queue=%s prio=%d maxAttempts=%d leaseMs=%d runAt=+%v meta=%.40s key=%q now=%v",
			tk.ID, tk.Queue, tk.Priority, tk.MaxAttempts, tk.LeaseMs, tk.RunAt.Sub(now), tk.Metadata, key, now),
		run: func(ctx context.Context, st store.Store) (any, error) {
			got, created, err := st.CreateTask(ctx, p)
			return []any{got, created}, err
		},
	}
}

func (g *opGen) claim() diffOp {
	p := store.ClaimTasksParams{WorkerID: g.worker(), Queues: g.queues(), MaxTasks: 1 + g.rng.IntN(4), Now: g.now}
	return diffOp{
		desc: fmt.Sprintf("claim %+v", p),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.ClaimTasks(ctx, p)
		},
	}
}

func (g *opGen) update() diffOp {
	var u taskwire.TaskUpdates
	if g.rng.IntN(3) == 0 {
		s := fmt.Sprintf("text at %d", g.now.UnixMilli())
		u.Text = &s
	}
	if g.rng.IntN(3) == 0 {
		s := pick(g.rng, []taskwire.Status{taskwire.StatusPending, taskwire.StatusInProgress,
			taskwire.StatusCompleted, taskwire.StatusFailed})
		u.Status = &s
	}
	if g.rng.IntN(3) == 0 {
		pr := pick(g.rng, []int{0, 10, 50, 100})
		u.Priority = &pr
	}
	if g.rng.IntN(3) == 0 {
		u.Metadata = json.RawMessage(pick(g.rng, diffMetadata))
	}
	p := store.UpdateTaskParams{ID: g.liveTaskID(), Updates: u, WorkerID: g.maybeWorker(), Attempt: g.attempt(), By: "admin", Now: g.now}
	g.aim(p.ID, &p.WorkerID, &p.Attempt)
	return diffOp{
		desc: fmt.Sprintf("update %s text=%v status=%v prio=%v meta=%.40s worker=%q attempt=%s now=%v",
			p.ID, deref(u.Text), deref(u.Status), deref(u.Priority), u.Metadata, p.WorkerID, ptrString(p.Attempt), p.Now),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.UpdateTask(ctx, p)
		},
	}
}

// aim, three times in four, sets worker and attempt to the task's current
// ones (worker only when it has one), so that calls often get through.
func (g *opGen) aim(id string, worker *string, attempt **int) {
	if g.rng.IntN(4) == 0 {
		return
	}
	tk, err := g.ref.GetTask(context.Background(), id)
	if err != nil {
		return
	}
	a := tk.Attempt
	*attempt = &a
	if tk.AssignedTo != "" && *worker != "" {
		*worker = tk.AssignedTo
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func (g *opGen) complete() diffOp {
	p := store.CompleteTaskParams{ID: g.liveTaskID(), WorkerID: g.maybeWorker(), Attempt: g.attempt(), By: "admin", Now: g.now}
	if g.rng.IntN(3) == 0 {
		p.Failed, p.Error = true, pick(g.rng, []string{"boom", "bang"})
	} else {
		p.Result = json.RawMessage(pick(g.rng, diffResults))
	}
	g.aim(p.ID, &p.WorkerID, &p.Attempt)
	return diffOp{
		desc: fmt.Sprintf("complete %s worker=%q failed=%v error=%q result=%s attempt=%s now=%v",
			p.ID, p.WorkerID, p.Failed, p.Error, shorten(p.Result), ptrString(p.Attempt), p.Now),
		run: func(ctx context.Context, st store.Store) (any, error) {
			got, finalized, err := st.CompleteTask(ctx, p)
			return []any{got, finalized}, err
		},
	}
}

func (g *opGen) assign() diffOp {
	p := store.AssignTaskParams{TaskID: g.taskID(), WorkerID: g.worker(), By: "admin", Now: g.now}
	return diffOp{
		desc: fmt.Sprintf("assign %+v", p),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.AssignTask(ctx, p)
		},
	}
}

func (g *opGen) unassign() diffOp {
	p := store.UnassignTaskParams{TaskID: g.taskID(), By: "admin", Now: g.now}
	return diffOp{
		desc: fmt.Sprintf("unassign %+v", p),
		run: func(ctx context.Context, st store.Store) (any, error) {
			prev, got, err := st.UnassignTask(ctx, p)
			return []any{prev, got}, err
		},
	}
}

func (g *opGen) remove() diffOp {
	if g.rng.IntN(2) == 0 { // deletes are rarer than the other operations
		return g.get()
	}
	p := store.DeleteTaskParams{ID: g.taskID(), By: "admin", Now: g.now}
	return diffOp{
		desc: fmt.Sprintf("delete %+v", p),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return nil, st.DeleteTask(ctx, p)
		},
	}
}

func (g *opGen) register() diffOp {
	p := store.RegisterWorkerParams{ID: g.worker(), Queues: g.queues(), Roles: pick(g.rng, [][]string{nil, {"worker"}}),
		By: "admin", Now: g.now}
	if g.rng.IntN(2) == 0 {
		p.Metadata = json.RawMessage(pick(g.rng, diffMetadata))
	}
	return diffOp{
		desc: fmt.Sprintf("register %s queues=%v roles=%v meta=%.40s now=%v", p.ID, p.Queues, p.Roles, p.Metadata, p.Now),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return nil, st.RegisterWorker(ctx, p)
		},
	}
}

func (g *opGen) heartbeat() diffOp {
	p := store.HeartbeatWorkerParams{ID: g.worker(), Now: g.now}
	return diffOp{
		desc: fmt.Sprintf("heartbeat %+v", p),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.HeartbeatWorker(ctx, p)
		},
	}
}

func (g *opGen) unregister() diffOp {
	p := store.UnregisterWorkerParams{ID: g.worker(), By: "admin", Now: g.now}
	return diffOp{
		desc: fmt.Sprintf("unregister %+v", p),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.UnregisterWorker(ctx, p)
		},
	}
}

func (g *opGen) sweep() diffOp {
	g.now = g.now.Add(time.Duration(g.rng.IntN(6000)) * time.Millisecond)
	p := store.SweepParams{Now: g.now, WorkerTimeout: 30 * time.Second, EventRetention: time.Minute, MaxEvents: 60}
	return diffOp{
		desc: fmt.Sprintf("sweep now=%v", p.Now),
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.Sweep(ctx, p)
		},
	}
}

func (g *opGen) list() diffOp {
	p := store.ListTasksParams{
		Limit: g.rng.IntN(6), Offset: g.rng.IntN(4), Desc: g.rng.IntN(2) == 0,
		OrderBy: pick(g.rng, []store.OrderBy{"", store.OrderByCreatedAt, store.OrderByUpdatedAt, store.OrderByPriority,
			store.OrderByStatus, store.OrderByAssignedTo, store.OrderByCompletedAt}),
	}
	switch g.rng.IntN(5) {
	case 0:
		p.Status = pick(g.rng, []taskwire.Status{taskwire.StatusPending, taskwire.StatusInProgress,
			taskwire.StatusCompleted, taskwire.StatusFailed})
	case 1:
		p.AssignedTo = g.worker()
	case 2:
		pr := pick(g.rng, []int{0, 50, 100})
		p.Priority = &pr
	case 3:
		p.Queue = pick(g.rng, diffQueues)
	}
	return diffOp{
		desc: fmt.Sprintf("list status=%q assignedTo=%q prio=%s queue=%q limit=%d offset=%d orderBy=%s desc=%v",
			p.Status, p.AssignedTo, ptrString(p.Priority), p.Queue, p.Limit, p.Offset, p.OrderBy, p.Desc),
		run: func(ctx context.Context, st store.Store) (any, error) {
			tasks, total, err := st.ListTasks(ctx, p)
			return []any{tasks, total}, err
		},
	}
}

func (g *opGen) get() diffOp {
	id := g.taskID()
	return diffOp{
		desc: "get " + id,
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.GetTask(ctx, id)
		},
	}
}

func (g *opGen) workers() diffOp {
	return diffOp{
		desc: "workers",
		run: func(ctx context.Context, st store.Store) (any, error) {
			return st.ListWorkers(ctx)
		},
	}
}

func (g *opGen) stats() diffOp {
	now := g.now
	return diffOp{
		desc: fmt.Sprintf("stats now=%v", now),
		run: func(ctx context.Context, st store.Store) (any, error) {
			s, err := st.Stats(ctx, now)
			if s != nil {
				slices.SortFunc(s.Queues, func(a, b store.QueueStats) int { return strings.Compare(a.Queue, b.Queue) })
			}
			return s, err
		},
	}
}

func (g *opGen) result() diffOp {
	id := g.taskID()
	return diffOp{
		desc: "result " + id,
		run: func(ctx context.Context, st store.Store) (any, error) {
			r, size, err := st.OpenResult(ctx, id)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			b, err := io.ReadAll(r)
			return []any{string(b), size}, err
		},
	}
}

// shorten cuts a long JSON value for an operation's description.
func shorten(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", b[:20], len(b))
	}
	return string(b)
}

func (g *opGen) taskEvents() diffOp {
	id, limit := g.taskID(), 1+g.rng.IntN(5)
	return diffOp{
		desc: fmt.Sprintf("taskEvents %s limit=%d", id, limit),
		run: func(ctx context.Context, st store.Store) (any, error) {
			evs, err := st.TaskEvents(ctx, id, limit)
			for i := range evs {
				evs[i].ID = "" // event ids are the backend's own
			}
			return evs, err
		},
	}
}

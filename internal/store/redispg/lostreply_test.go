package redispg

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// scriptTrap intercepts the next script call (EVALSHA or EVAL) whose
// arguments mention a given string, once.
type scriptTrap struct {
	mu    sync.Mutex
	match string
	// around runs in place of the call: next runs it.
	around func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error
}

func (h *scriptTrap) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptTrap) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *scriptTrap) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if around := h.take(cmd); around != nil {
			return around(ctx, cmd, next)
		}
		return next(ctx, cmd)
	}
}

// take returns the interceptor when cmd is the call awaited, disarming it.
func (h *scriptTrap) take(cmd redis.Cmder) func(context.Context, redis.Cmder, redis.ProcessHook) error {
	name := cmd.Name()
	if name != "evalsha" && name != "eval" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.around == nil {
		return nil
	}
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.Contains(s, h.match) {
			f := h.around
			h.around = nil
			return f
		}
		if b, ok := a.([]byte); ok && strings.Contains(string(b), h.match) {
			f := h.around
			h.around = nil
			return f
		}
	}
	return nil
}

// arm makes the next script call mentioning match run through around.
func (h *scriptTrap) arm(match string, around func(context.Context, redis.Cmder, redis.ProcessHook) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.match, h.around = match, around
}

// trappedStore opens a store without background loops on a fresh
// environment whose client carries a scriptTrap.
func trappedStore(t *testing.T) (*testEnv, *scriptTrap, *Store) {
	t.Helper()
	env := newTestEnv(t)
	h := &scriptTrap{}
	env.rdb.(*redis.Client).AddHook(h)
	return env, h, env.open(t, Options{ReconcileInterval: -1})
}

var errReplyLost = errors.New("read tcp: connection reset by peer")

// TestCreateReplyLost: a create whose transition committed in Redis but
// whose reply was lost makes one task, not two: the store settles the
// create's outcome before it takes the row back, so the task keeps its
// row and its idempotency key, and a retry with the key finds it, even
// after the task's claim reached PostgreSQL through the outbox.
func TestCreateReplyLost(t *testing.T) {
	t.Parallel()
	_, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	register(t, st, "w1", now)

	trap.arm("t-lost", func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		if err := next(ctx, cmd); err != nil { // the script runs...
			return err
		}
		cmd.SetErr(errReplyLost) // ...and its reply never comes
		return errReplyLost
	})
	key := store.CreateTaskParams{Task: readyTask("t-lost", now), IdempotencyKey: "k-lost",
		IdempotencyWindow: time.Hour, Now: now}
	// The store settles the outcome: the transition committed, so the
	// create did (a store answering an error here would leave the caller
	// to retry with its key, which must then find this task).
	if first, created, err := st.CreateTask(ctx, key); err != nil || !created || first.ID != "t-lost" {
		t.Errorf("create with its reply lost = %v, %v, %v; want t-lost created", first, created, err)
	}
	if got := claim(t, st, "w1", now); len(got) != 1 || got[0].ID != "t-lost" {
		t.Fatalf("claimed %v, want t-lost", got)
	}
	if err := st.flushOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	retry := key
	retry.Task = readyTask("t-retry", now)
	again, created, err := st.CreateTask(ctx, retry)
	if err != nil || created || again.ID != "t-lost" {
		t.Errorf("retry with the key = %v, %v, %v; want t-lost again, not created", again, created, err)
	}
	rows, _, err := st.ListTasks(ctx, store.ListTasksParams{Limit: 10})
	if err != nil || len(rows) != 1 {
		t.Fatalf("ListTasks = %d tasks, %v; want t-lost alone", len(rows), err)
	}
}

// TestCreateFencedOff: a create whose transition had not reached Redis
// when the caller gave up is taken back, and the transition, arriving
// late, commits nothing: no task in Redis without a row in PostgreSQL.
func TestCreateFencedOff(t *testing.T) {
	t.Parallel()
	env, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()

	var late redis.Cmder
	trap.arm("t-late", func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		late = cmd // held back, not sent
		cmd.SetErr(errReplyLost)
		return errReplyLost
	})
	_, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask("t-late", now), Now: now})
	if err == nil {
		t.Fatal("create whose transition never arrived succeeded")
	}
	if late == nil {
		t.Fatal("the create's transition was not held back")
	}
	// The transition arrives after all.
	if err := env.rdb.Do(ctx, late.Args()...).Err(); err != nil {
		t.Fatalf("late transition: %v", err)
	}
	if _, err := st.GetTask(ctx, "t-late"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetTask(t-late) after its late transition: %v; want not found", err)
	}
	if n, err := env.rdb.Exists(ctx, st.k.task("t-late")).Result(); err != nil || n != 0 {
		t.Fatalf("Redis holds t-late: %d, %v", n, err)
	}
}

// TestRefusedCompletionUnstaged: a completion that Redis refuses after its
// outcome was staged (an admin took the task back meanwhile) leaves no
// staged outcome, so that after a loss of Redis the reconciler restores
// the task as it was, pending, not completed by the refused call.
func TestRefusedCompletionUnstaged(t *testing.T) {
	t.Parallel()
	env, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	claimedBy(t, st, "t-taken", "w1", now)

	// Between staging and the Redis transition, an admin unassigns the task.
	trap.arm("task.completed", func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		if _, _, err := st.UnassignTask(ctx, store.UnassignTaskParams{TaskID: "t-taken", By: "admin", Now: now}); err != nil {
			t.Errorf("UnassignTask: %v", err)
		}
		return next(ctx, cmd)
	})
	_, _, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: "t-taken", WorkerID: "w1", Result: []byte(`{"ok":1}`), Now: now})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("completion of a task taken back: %v; want a conflict", err)
	}
	var staged int
	if err := st.pg.QueryRow(ctx, "SELECT count(*) FROM staged_results WHERE task_id = 't-taken'").Scan(&staged); err != nil {
		t.Fatal(err)
	}
	if staged != 0 {
		t.Errorf("%d staged outcomes of the refused completion remain", staged)
	}

	if err := st.flushOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(reconcileGrace + 500*time.Millisecond) // the reconciler leaves fresh rows alone
	deleteKeys(ctx, env.rdb, "{"+env.prefix+"}:*")    // Redis lost everything
	if _, err := st.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetTask(ctx, "t-taken")
	if err != nil || got.Status != taskwire.StatusPending {
		t.Fatalf("after restore: %+v, %v; want pending", got, err)
	}
}

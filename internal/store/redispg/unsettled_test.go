package redispg

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/store"
)

// TestCreateOfUnknownOutcomeNotMade: a create that Redis answered neither
// for its transition nor for the settling of its outcome (Redis down)
// answers an error, and so makes no task: once Redis answers again the
// reconciler settles it instead of enqueueing it, so that the caller's
// retry makes the one task, with or without an idempotency key.
func TestCreateOfUnknownOutcomeNotMade(t *testing.T) {
	t.Parallel()
	env, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	p := store.CreateTaskParams{Task: readyTask("t-unknown", now), IdempotencyKey: "k-unknown",
		IdempotencyWindow: time.Hour, Now: now}
	createUnanswered(t, trap, st, p)

	time.Sleep(reconcileGrace + 500*time.Millisecond) // the reconciler leaves fresh rows alone
	if _, err := st.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetTask(ctx, "t-unknown"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask(t-unknown) after reconciling: %v; want not found", err)
	}
	if n, err := env.rdb.Exists(ctx, st.k.task("t-unknown")).Result(); err != nil || n != 0 {
		t.Errorf("Redis holds t-unknown: %d, %v", n, err)
	}
	retry := p
	retry.Task = readyTask("t-retry", now)
	got, created, err := st.CreateTask(ctx, retry)
	if err != nil || !created || got.ID != "t-retry" {
		t.Fatalf("retry with the key = %v, %v, %v; want t-retry created", got, created, err)
	}
	rows, _, err := st.ListTasks(ctx, store.ListTasksParams{Limit: 10})
	if err != nil || len(rows) != 1 || rows[0].ID != "t-retry" {
		t.Fatalf("ListTasks = %v, %v; want t-retry alone", rows, err)
	}
}

// TestCreateOfUnknownOutcomeNotListed: the row of a create of unknown
// outcome, which answered its caller an error, is not a task to list or
// count until the create is settled: task.list and the counts settle it
// first, and so show nothing here.
func TestCreateOfUnknownOutcomeNotListed(t *testing.T) {
	t.Parallel()
	_, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	createUnanswered(t, trap, st, store.CreateTaskParams{Task: readyTask("t-unlisted", now), Now: now})

	rows, total, err := st.ListTasks(ctx, store.ListTasksParams{Limit: 10})
	if err != nil || len(rows) != 0 || total != 0 {
		t.Fatalf("ListTasks after a create that answered an error = %v (total %d), %v; want none", rows, total, err)
	}
	stats, err := st.Stats(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Queues) != 0 {
		t.Fatalf("Stats after a create that answered an error counts %+v; want no tasks", stats.Queues)
	}
}

// createUnanswered runs the create p while Redis answers neither its
// transition nor the settling of its outcome, and fails unless the create
// answers an error.
func createUnanswered(t *testing.T, trap *scriptTrap, st *Store, p store.CreateTaskParams) {
	t.Helper()
	down := func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		cmd.SetErr(errReplyLost) // not sent: Redis does not answer
		return errReplyLost
	}
	trap.arm(p.Task.ID, func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		trap.arm(p.Task.ID, down) // the settling of the outcome fails too
		return down(ctx, cmd, next)
	})
	if _, _, err := st.CreateTask(t.Context(), p); err == nil {
		t.Fatal("create whose transition never reached Redis succeeded")
	}
}

// TestMadeCreateOutlivesRedisLoss: a create whose reply was lost but whose
// transition committed is acknowledged, and so survives a loss of Redis:
// settling its outcome leaves no mark that would make the reconciler take
// it back.
func TestMadeCreateOutlivesRedisLoss(t *testing.T) {
	t.Parallel()
	env, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()

	trap.arm("t-made", func(ctx context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		if err := next(ctx, cmd); err != nil { // the script runs...
			return err
		}
		cmd.SetErr(errReplyLost) // ...and its reply never comes
		return errReplyLost
	})
	if _, created, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask("t-made", now), Now: now}); err != nil || !created {
		t.Fatalf("create with its reply lost = %v, %v; want created", created, err)
	}
	time.Sleep(reconcileGrace + 500*time.Millisecond) // the reconciler leaves fresh rows alone
	deleteKeys(ctx, env.rdb, "{"+env.prefix+"}:*")    // Redis lost everything
	if _, err := st.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetTask(ctx, "t-made"); err != nil || got.Status != "pending" {
		t.Fatalf("GetTask(t-made) after Redis lost it: %+v, %v; want pending", got, err)
	}
}

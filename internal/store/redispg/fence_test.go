package redispg

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/store"
)

// TestRestoreHonoursCreateFence: a reconcile that runs between a create's
// settle (fence set: "not made") and the removal of its row must not put
// the task into Redis, else the caller, told to retry, would make a second
// task with the same idempotency key.
func TestRestoreHonoursCreateFence(t *testing.T) {
	env, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	trap.arm("t-f", func(c context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		// The create's transition never arrives; arm the settle.
		trap.arm("fence:t-f", func(c context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
			err := next(c, cmd) // settle: not there, fenced
			time.Sleep(reconcileGrace + 500*time.Millisecond)
			if _, rerr := st.Reconcile(ctx); rerr != nil {
				t.Errorf("reconcile: %v", rerr)
			}
			return err
		})
		cmd.SetErr(errReplyLost)
		return errReplyLost
	})
	_, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask("t-f", now), IdempotencyKey: "k-f",
		IdempotencyWindow: time.Hour, Now: now})
	t.Logf("create: %v", err)
	got, gerr := st.GetTask(ctx, "t-f")
	var rows, keys int
	st.pg.QueryRow(ctx, "SELECT count(*) FROM tasks WHERE id = 't-f'").Scan(&rows)
	st.pg.QueryRow(ctx, "SELECT count(*) FROM idempotency_keys WHERE key = 'k-f'").Scan(&keys)
	n, _ := env.rdb.Exists(ctx, st.k.task("t-f")).Result()
	t.Logf("GetTask: %v %v; redis holds=%d pg rows=%d idempotency keys=%d", got != nil, gerr, n, rows, keys)
	if err == nil {
		t.Fatal("create answered no error though its transition never ran")
	}
	if n != 0 || rows != 0 || keys != 0 {
		t.Errorf("create answered an error, yet Redis holds the task (%d), PostgreSQL its row (%d) and key (%d); want none", n, rows, keys)
	}
}

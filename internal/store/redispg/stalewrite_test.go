package redispg

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// TestRestoreOutranksStaleWrite: a persister that read a task from Redis
// just before Redis lost its data writes that state to PostgreSQL after
// the reconciler restored the task from its older row. The restored task
// goes on (claimed again, completed), and PostgreSQL takes its new states
// all the same: the restore's version is above every version Redis had
// issued before the loss.
func TestRestoreOutranksStaleWrite(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	st := env.open(t, Options{ReconcileInterval: -1}) // the test drives the persister
	ctx := t.Context()
	now := time.Now().UTC()
	register(t, st, "w1", now)
	tk := readyTask("t-stale", now)
	if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: now}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, st, "w1", now); len(got) != 1 {
		t.Fatalf("claimed %v, want the task", got)
	}
	for range 3 { // lease renewals: Redis issues versions PostgreSQL lacks
		if _, err := st.HeartbeatWorker(ctx, store.HeartbeatWorkerParams{ID: "w1", Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	read, err := st.getTasks(ctx, []string{tk.ID}) // a persister reads the outbox's task
	if err != nil || len(read) != 1 {
		t.Fatalf("getTasks = %v, %v", read, err)
	}

	// The reconciler leaves fresh rows alone: the row dates from long ago.
	if _, err := st.pg.Exec(ctx, "UPDATE tasks SET written_at = now() - interval '1 minute'"); err != nil {
		t.Fatal(err)
	}
	deleteKeys(ctx, env.rdb, "{"+env.prefix+"}:*") // Redis lost everything
	if n, err := st.Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want 1 task restored", n, err)
	}
	b := &pgx.Batch{} // the persister's write, made before the loss, lands now
	if err := queueTaskRows(b, read); err != nil {
		t.Fatal(err)
	}
	if err := st.pg.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}

	register(t, st, "w1", now)
	if got := claim(t, st, "w1", now); len(got) != 1 {
		t.Fatalf("claimed %v after the restore, want the task", got)
	}
	if _, _, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: tk.ID, WorkerID: "w1",
		Result: []byte(`"ok"`), Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.flushOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	live, err := st.redisTask(ctx, tk.ID)
	if err != nil || live == nil || live.Status != taskwire.StatusCompleted {
		t.Fatalf("Redis holds %+v, %v; want the task completed", live, err)
	}
	row, err := st.pgTask(ctx, tk.ID)
	if err != nil || row == nil || row.Status != live.Status || row.Attempt != live.Attempt {
		t.Fatalf("PostgreSQL holds %+v (version %d), %v; want %s/%d as Redis (version %d)",
			row.Task, row.ver, err, live.Status, live.Attempt, live.ver)
	}
}

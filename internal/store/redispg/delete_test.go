package redispg

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// TestDeleteLeavesNoResults: a completion that read its task before a
// delete and stages its result after the delete committed, or while the
// delete's transaction is open, leaves no result rows of the deleted
// task in PostgreSQL; the completion answers that the task is gone.
func TestDeleteLeavesNoResults(t *testing.T) {
	t.Parallel()
	st := newTestStore(t, Options{ReconcileInterval: -1})
	now := truncMs(time.Now().UTC())
	register(t, st, "w1", now)
	small, large := []byte(`{"done":true}`), bytes.Repeat([]byte("x"), chunkSize+10)

	// inProgress creates task id, claims it and returns it as a completion
	// reads it, with the outcome of its completion with result.
	inProgress := func(t *testing.T, id string, result []byte) (before, after *taskState) {
		t.Helper()
		if _, _, err := st.CreateTask(t.Context(), store.CreateTaskParams{Task: readyTask(id, now), Now: now}); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, st, "w1", now); len(got) != 1 {
			t.Fatalf("claimed %d tasks, want 1", len(got))
		}
		before, err := st.liveTask(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		after = before.clone()
		after.finalize(taskwire.StatusCompleted, "", int64(len(result)), resultSum(result), "w1", now)
		return before, after
	}
	del := func(t *testing.T, id string) {
		t.Helper()
		if err := st.DeleteTask(t.Context(), store.DeleteTaskParams{ID: id, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	noRows := func(t *testing.T, id string) {
		t.Helper()
		var n int
		err := st.pg.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM results WHERE task_id = $1) +
			(SELECT count(*) FROM staged_results WHERE task_id = $1)`, id).Scan(&n)
		if err != nil || n != 0 {
			t.Errorf("result rows of deleted task %s: %d, %v; want none", id, n, err)
		}
	}

	for name, result := range map[string][]byte{"small": small, "large": large} {
		t.Run("staged after the delete/"+name, func(t *testing.T) {
			id := "t-after-" + name
			before, after := inProgress(t, id, result)
			del(t, id)
			if err := st.stageResult(t.Context(), before, after, result); !errors.Is(err, errRaced) {
				t.Errorf("staging the result of a deleted task: %v; want it refused", err)
			}
			_, _, err := st.CompleteTask(t.Context(), store.CompleteTaskParams{ID: id, WorkerID: "w1",
				Attempt: new(1), Result: result, Now: now})
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("completion of a deleted task: %v; want not found", err)
			}
			noRows(t, id)
		})
	}

	t.Run("staged during the delete", func(t *testing.T) {
		id := "t-during"
		before, after := inProgress(t, id, small)
		// The delete's PostgreSQL transaction, open until the staging
		// waits on it (or, staging first, has finished).
		tx, err := st.pg.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		var pid int
		if err := tx.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		b := &pgx.Batch{}
		queueTaskWrites(b, nil, []string{id})
		if err := tx.SendBatch(t.Context(), b).Close(); err != nil {
			t.Fatal(err)
		}
		staged := make(chan error, 1)
		go func() { staged <- st.stageResult(context.Background(), before, after, small) }()
		waitBlockedOrDone(t, st, pid, staged)
		if err := tx.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-staged; !errors.Is(err, errRaced) {
			t.Errorf("staging during the delete: %v; want it refused once the delete committed", err)
		}
		noRows(t, id)
	})
}

// waitBlockedOrDone waits until a PostgreSQL session waits on a lock the
// session pid holds, or done has a value (put back for the caller).
func waitBlockedOrDone(t *testing.T, st *Store, pid int, done chan error) {
	t.Helper()
	for range 6000 {
		select {
		case err := <-done:
			done <- err
			return
		default:
		}
		var n int
		if err := st.pg.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
			pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("staging neither finished nor waited on the delete after a minute")
}

// TestDeleteCommitFailedStaysDeleted: a delete whose PostgreSQL commit
// fails after its script removed the task from Redis answers an error,
// and the task stays deleted: the reconciler, which restores unfinished
// tasks PostgreSQL holds and Redis does not, must not bring it back, and
// PostgreSQL ends up with the tombstone through the outbox.
func TestDeleteCommitFailedStaysDeleted(t *testing.T) {
	t.Parallel()
	st := newTestStore(t, Options{ReconcileInterval: -1})
	now := truncMs(time.Now().UTC())
	const id = "t-delete-commit-failed"
	if _, _, err := st.CreateTask(t.Context(), store.CreateTaskParams{Task: readyTask(id, now), Now: now}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	st.afterScript = func(tx pgx.Tx) {
		once.Do(func() { // the delete's connection dies before its commit
			pid := tx.Conn().PgConn().PID()
			if _, err := st.pg.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Error(err)
			}
		})
	}
	if err := st.DeleteTask(t.Context(), store.DeleteTaskParams{ID: id, Now: now}); err == nil {
		t.Fatal("DeleteTask with its commit cut off: no error")
	}
	// Deleting it again finds it gone, though PostgreSQL may still hold it.
	if err := st.DeleteTask(t.Context(), store.DeleteTaskParams{ID: id, Now: now}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteTask again: %v, want not found", err)
	}
	time.Sleep(reconcileGrace + 100*time.Millisecond) // the row is old enough to reconcile
	if _, err := st.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := st.redisTask(t.Context(), id); err != nil || got != nil {
		t.Errorf("Redis after the reconciler ran: task %v, %v; want none", got, err)
	}
	// ListTasks applies the outbox first: the tombstone reaches PostgreSQL.
	tasks, _, err := st.ListTasks(t.Context(), store.ListTasksParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range tasks {
		if got.ID == id {
			t.Errorf("ListTasks still lists %s: %s", id, got.Status)
		}
	}
	if _, err := st.GetTask(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask: %v, want not found", err)
	}
	if n, err := st.rdb.Exists(t.Context(), st.k.deletion(id)).Result(); err != nil || n != 0 {
		t.Errorf("deletion mark after the tombstone was written: %d, %v; want gone", n, err)
	}
}

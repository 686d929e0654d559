package redispg

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// TestStagedOutcomeFirstWins: an outcome staged first for an attempt (here
// an admin's failure whose Redis transition has not committed yet) stays:
// the worker's different completion of that attempt is a conflict that
// writes no result bytes, and the admin's try again commits its outcome.
func TestStagedOutcomeFirstWins(t *testing.T) {
	t.Parallel()
	st := newTestStore(t, Options{ReconcileInterval: -1})
	ctx := t.Context()
	now := time.Now().UTC()
	tk := readyTask("t-staged", now)
	if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: now}); err != nil {
		t.Fatal(err)
	}
	register(t, st, "w1", now)
	if got := claim(t, st, "w1", now); len(got) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(got))
	}
	if _, err := st.pg.Exec(ctx, `INSERT INTO staged_results (task_id, attempt, status, error, size, completed_at)
		VALUES ($1, 1, 'failed', 'stopped by an admin', 0, $2)`, tk.ID, now.UnixMilli()); err != nil {
		t.Fatal(err)
	}

	_, _, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: tk.ID, WorkerID: "w1", Attempt: new(1),
		Result: json.RawMessage(`{"done":true}`), Now: now})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("worker's completion after another outcome was staged: %v; want a conflict", err)
	}
	var chunks int
	if err := st.pg.QueryRow(ctx, "SELECT count(*) FROM results WHERE task_id = $1", tk.ID).Scan(&chunks); err != nil || chunks != 0 {
		t.Fatalf("result chunks after the refused completion: %d, %v; want none", chunks, err)
	}

	if _, _, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: tk.ID, Attempt: new(1), Failed: true,
		Error: "stopped by an admin", By: "admin", Now: now.Add(time.Second)}); err != nil {
		t.Fatalf("the staged outcome's completion: %v", err)
	}
	got, err := st.GetTask(ctx, tk.ID)
	if err != nil || got.Status != taskwire.StatusFailed || got.Error != "stopped by an admin" || !got.CompletedAt.Equal(truncMs(now)) {
		t.Fatalf("GetTask = %+v, %v; want failed by the admin at the staged time %v", got, err, truncMs(now))
	}
}

package redispg

import (
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

// TestClaimWritesNothingForATaskWithoutHash: a ready set naming a task
// whose hash Redis no longer holds (Redis inconsistent) fails the claim
// before any task is written: the other tasks stay ready, none is held by
// the worker, and a claim once the stray member is gone takes them.
func TestClaimWritesNothingForATaskWithoutHash(t *testing.T) {
	t.Parallel()
	st := newTestStore(t, Options{ReconcileInterval: -1})
	ctx := t.Context()
	now := time.Now().UTC()
	for _, id := range []string{"t-a", "t-b", "t-c"} { // claimed in this order
		if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: readyTask(id, now), Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	register(t, st, "w1", now)
	if err := st.rdb.Del(ctx, st.k.task("t-b")).Err(); err != nil {
		t.Fatal(err)
	}

	if got, err := st.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 3, Now: now}); err == nil {
		t.Fatalf("claim over a ready task without its hash = %v; want an error", got)
	}
	if n, err := st.rdb.SCard(ctx, st.k.held("w1")).Result(); err != nil || n != 0 {
		t.Fatalf("tasks held by w1 after the failed claim: %d, %v; want none", n, err)
	}
	if n, err := st.rdb.ZCard(ctx, st.k.ready("default")).Result(); err != nil || n != 3 {
		t.Fatalf("ready tasks after the failed claim: %d, %v; want the 3 still there", n, err)
	}

	if err := st.rdb.ZRem(ctx, st.k.ready("default"), "t-b").Err(); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, st, "w1", now); len(got) != 2 || got[0].ID != "t-a" || got[1].ID != "t-c" {
		t.Fatalf("claim once the stray member is gone = %v; want t-a and t-c", got)
	}
}

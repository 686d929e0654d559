package redispg

import (
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// TestSweepKeepsRenewedLease: a heartbeat that renews a lease while a
// sweep is expiring it (between the sweep's read of the task and its
// decision) leaves the renewed lease in force: the sweep changes nothing,
// and a later sweep past the renewed lease returns the task to pending,
// so a worker that dies after renewing still loses its task.
func TestSweepKeepsRenewedLease(t *testing.T) {
	t.Parallel()
	st := newTestStore(t, Options{ReconcileInterval: -1})
	ctx := t.Context()
	now := truncMs(time.Now().UTC())
	tk := readyTask("t-renewed", now)
	if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: now}); err != nil {
		t.Fatal(err)
	}
	register(t, st, "w1", now)
	if got := claim(t, st, "w1", now); len(got) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(got))
	}
	lease := time.Duration(tk.LeaseMs) * time.Millisecond
	sweepAt := now.Add(lease + time.Second) // the first lease has expired
	renewed := sweepAt.Add(lease)           // the lease of a heartbeat at sweepAt
	heartbeats := 0
	st.leaseRead = func(id string) {
		if heartbeats > 0 {
			return
		}
		heartbeats++
		if alive, err := st.HeartbeatWorker(ctx, store.HeartbeatWorkerParams{ID: "w1", Now: sweepAt}); err != nil || !alive {
			t.Errorf("heartbeat during the sweep: %v, %v", alive, err)
		}
	}
	res, err := st.Sweep(ctx, store.SweepParams{Now: sweepAt})
	if err != nil {
		t.Fatal(err)
	}
	st.leaseRead = nil
	if heartbeats != 1 || res.Requeued != 0 || res.Failed != 0 {
		t.Fatalf("sweep with a renewal in between: %d heartbeats, %+v; want 1 heartbeat and nothing expired", heartbeats, res)
	}
	score, err := st.rdb.ZScore(ctx, st.k.leases(), tk.ID).Result()
	if err != nil || int64(score) != renewed.UnixMilli() {
		t.Fatalf("lease entry after the sweep: %v, %v; want the renewed lease %d", score, err, renewed.UnixMilli())
	}

	res, err = st.Sweep(ctx, store.SweepParams{Now: renewed.Add(time.Second)})
	if err != nil || res.Requeued != 1 {
		t.Fatalf("sweep past the renewed lease: %+v, %v; want the task requeued", res, err)
	}
	got, err := st.GetTask(ctx, tk.ID)
	if err != nil || got.Status != taskwire.StatusPending {
		t.Fatalf("task after its renewed lease expired: %+v, %v; want pending", got, err)
	}
}

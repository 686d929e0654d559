package redispg

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/events"
	"github.com/taskwire/taskwire/internal/store"
)

// TestReconcileKeepsReservation: a pending task reserved by task.assign
// stays reserved for its worker after Redis lost everything (workers
// included, until they register again): another worker's claim does not
// get it, its own does once registered, and PostgreSQL keeps the
// assignment meanwhile. An admin can still unassign such a task.
func TestReconcileKeepsReservation(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	st := env.open(t, Options{ReconcileInterval: -1})
	ctx := t.Context()
	now := time.Now().UTC()
	register(t, st, "w1", now)
	tk := assigned(t, st, "t-reserved", "w1", now)
	freed := assigned(t, st, "t-unassigned", "w1", now)

	time.Sleep(reconcileGrace + 500*time.Millisecond) // the reconciler leaves fresh rows alone
	deleteKeys(ctx, env.rdb, "{"+env.prefix+"}:*")    // Redis lost everything
	if n, err := st.Reconcile(ctx); err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want 2 tasks restored", n, err)
	}
	later := time.Now().UTC()
	if got, err := st.GetTask(ctx, tk.ID); err != nil || got.AssignedTo != "w1" || got.Status != taskwire.StatusPending {
		t.Fatalf("after restore: %+v, %v; want pending, assigned to w1", got, err)
	}
	rows, _, err := st.ListTasks(ctx, store.ListTasksParams{Limit: 10}) // reads PostgreSQL, outbox applied
	if err != nil || len(rows) != 2 || rows[0].AssignedTo != "w1" || rows[1].AssignedTo != "w1" {
		t.Fatalf("ListTasks after restore = %v, %v; want both tasks assigned to w1", rows, err)
	}
	if prev, _, err := st.UnassignTask(ctx, store.UnassignTaskParams{TaskID: freed.ID, By: "admin", Now: later}); err != nil || prev != "w1" {
		t.Fatalf("UnassignTask(%s) = %q, %v; want unassigned from w1", freed.ID, prev, err)
	}

	register(t, st, "w2", later)
	if got := claim(t, st, "w2", later); len(got) != 1 || got[0].ID != freed.ID {
		t.Fatalf("w2 claimed %v, want only the unassigned %s", got, freed.ID)
	}
	register(t, st, "w1", later)
	got := claim(t, st, "w1", later)
	if len(got) != 1 || got[0].ID != tk.ID || got[0].AssignedTo != "w1" {
		t.Fatalf("w1 claimed %v, want its reserved task", got)
	}
}

// readyTask returns task id as task.create makes it at now, ready then.
func readyTask(id string, now time.Time) taskwire.Task {
	return store.PendingTask(taskwire.Task{ID: id, Queue: taskwire.DefaultQueue, Text: "x",
		Priority: taskwire.DefaultPriority, MaxAttempts: taskwire.DefaultMaxAttempts, LeaseMs: 60_000,
		RunAt: now, CreatedAt: now, UpdatedAt: now})
}

// assigned creates task id, ready at now, and reserves it for worker.
func assigned(t *testing.T, st *Store, id, worker string, now time.Time) taskwire.Task {
	t.Helper()
	tk := readyTask(id, now)
	if _, _, err := st.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: now}); err != nil {
		t.Fatalf("CreateTask(%s): %v", id, err)
	}
	if _, err := st.AssignTask(t.Context(), store.AssignTaskParams{TaskID: id, WorkerID: worker, Now: now}); err != nil {
		t.Fatalf("AssignTask(%s, %s): %v", id, worker, err)
	}
	return tk
}

func register(t *testing.T, st *Store, id string, now time.Time) {
	t.Helper()
	if err := st.RegisterWorker(context.Background(), store.RegisterWorkerParams{ID: id, Now: now}); err != nil {
		t.Fatalf("RegisterWorker(%s): %v", id, err)
	}
}

func claim(t *testing.T, st *Store, worker string, now time.Time) []*taskwire.Task {
	t.Helper()
	got, err := st.ClaimTasks(context.Background(), store.ClaimTasksParams{WorkerID: worker, MaxTasks: 5, Now: now})
	if err != nil {
		t.Fatalf("ClaimTasks(%s): %v", worker, err)
	}
	return got
}

// TestEventCounterLost: while Redis has lost its event counter nothing
// appends events (a create answers a *store.UnavailableError and leaves
// no task), and once the store sets the counter again from PostgreSQL's
// mark, new event ids are above every id issued before the loss: a
// follower of the log gets an events.gap event for the events lost.
func TestEventCounterLost(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	st := env.open(t, Options{ReconcileInterval: -1})
	ctx := t.Context()
	now := time.Now().UTC()
	register(t, st, "w1", now)
	assigned(t, st, "t-before", "w1", now)
	before := lastEventID(t, st)
	hub := events.NewHub(st, events.Options{})
	go hub.Run(ctx)
	t.Cleanup(hub.Close)
	sub, err := hub.Subscribe(ctx, events.Filter{}, strconv.FormatInt(before, 10))
	if err != nil {
		t.Fatal(err)
	}

	deleteKeys(ctx, env.rdb, "{"+env.prefix+"}:*")
	tk := readyTask("t-during", now)
	if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: now}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("create with the event counter lost: %v; want a *store.UnavailableError", err)
	}
	if err := st.RegisterWorker(ctx, store.RegisterWorkerParams{ID: "w2", Now: now}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("register with the event counter lost: %v; want a *store.UnavailableError", err)
	}
	if _, err := st.GetTask(ctx, tk.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetTask of the refused create: %v; want not found", err)
	}

	if _, err := st.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	register(t, st, "w2", now)
	after := lastEventID(t, st)
	if after <= before {
		t.Fatalf("event id after the loss %d, not above %d issued before", after, before)
	}
	gap := taskwire.GapPayload{After: strconv.FormatInt(before, 10), Next: strconv.FormatInt(after, 10)}
	for _, want := range []taskwire.EventType{taskwire.EventGap, taskwire.EventWorkerRegistered} {
		select {
		case e := <-sub.Events():
			var p taskwire.GapPayload
			if e.Type != want || want == taskwire.EventGap && (json.Unmarshal(e.Payload, &p) != nil || p != gap) {
				t.Fatalf("follower got %s %s %s, want %s (a gap %+v, then w2's registration)", e.Type, e.ID, e.Payload, want, gap)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("follower: no %s event (ended: %v)", want, sub.Err())
		}
	}
}

// lastEventID returns the id of the last event st's stream holds.
func lastEventID(t *testing.T, st *Store) int64 {
	t.Helper()
	evs, err := st.ReadEvents(t.Context(), "", 1000)
	if err != nil || len(evs) == 0 {
		t.Fatalf("ReadEvents = %d events, %v", len(evs), err)
	}
	id, err := strconv.ParseInt(evs[len(evs)-1].ID, 10, 64)
	if err != nil {
		t.Fatalf("event id %q: %v", evs[len(evs)-1].ID, err)
	}
	return id
}

package redispg

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// raceLog is what the callers of TestMixedRace were acknowledged, by
// task.
type raceLog struct {
	mu       sync.Mutex
	claims   map[string][]int          // attempts handed out
	results  map[string]map[int]string // attempt -> result completed with
	deleted  map[string]bool
	finished map[string]int // completions that finalized
}

func (l *raceLog) add(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

// TestMixedRace runs, on two stores sharing Redis and PostgreSQL, rounds
// of claims, assignments, unassignments, deletes, updates (priority,
// requeue), completions, heartbeats, sweeps (lease expiry, workers going
// offline) and unregistrations racing on a few tasks, then checks after
// each round, for every task so far: it sits in exactly the Redis sets its state calls
// for, no attempt was handed out twice, a completed task carries the
// result of an acknowledged completion of its attempt, PostgreSQL holds
// what Redis does once the outbox is applied, and the events count the
// acknowledged claims, deletes and completions.
func TestMixedRace(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	stores := []*Store{env.open(t, Options{}), env.open(t, Options{})}
	ctx := t.Context()
	workers := []string{"w0", "w1", "w2"}
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, w := range workers {
		if err := stores[0].RegisterWorker(ctx, store.RegisterWorkerParams{ID: w, Now: base}); err != nil {
			t.Fatal(err)
		}
	}
	log := &raceLog{claims: map[string][]int{}, results: map[string]map[int]string{},
		deleted: map[string]bool{}, finished: map[string]int{}}
	var ids []string // every task of every round so far
	for round := range 12 {
		now := base.Add(time.Duration(round) * time.Hour)
		for n := range 4 {
			id := fmt.Sprintf("t-%020d%06d", round, n)
			ids = append(ids, id)
			tk := store.PendingTask(taskwire.Task{ID: id, Queue: taskwire.DefaultQueue, Text: "x",
				Priority: 50, MaxAttempts: 3, LeaseMs: 60_000, RunAt: now, CreatedAt: now, UpdatedAt: now})
			if _, _, err := stores[n%2].CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: now}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for i := range 25 {
					st := stores[rng.IntN(2)]
					at := now.Add(time.Duration(i) * time.Second)
					mixedOp(ctx, t, st, rng, log, ids[len(ids)-4:], workers, at)
				}
			})
		}
		wg.Wait()
		for _, w := range workers { // back online for the next round
			if err := stores[0].RegisterWorker(ctx, store.RegisterWorkerParams{ID: w, Now: now.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		checkRound(ctx, t, stores[0], log, ids, workers)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
}

// mixedOp runs one random operation on a random task of ids at at.
func mixedOp(ctx context.Context, t *testing.T, st *Store, rng *rand.Rand, log *raceLog, ids, workers []string, at time.Time) {
	id, w := ids[rng.IntN(len(ids))], workers[rng.IntN(len(workers))]
	switch rng.IntN(11) {
	case 0, 1:
		got, err := st.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: w, MaxTasks: 2, Now: at})
		if err == nil {
			log.add(func() {
				for _, tk := range got {
					log.claims[tk.ID] = append(log.claims[tk.ID], tk.Attempt)
				}
			})
		}
		for _, tk := range got {
			if rng.IntN(4) == 0 {
				continue
			}
			result := fmt.Sprintf(`{"by":%q,"attempt":%d}`, w, tk.Attempt)
			_, done, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: tk.ID, WorkerID: w, Attempt: &tk.Attempt,
				Result: json.RawMessage(result), Now: at})
			if err == nil {
				log.add(func() {
					if log.results[tk.ID] == nil {
						log.results[tk.ID] = map[int]string{}
					}
					log.results[tk.ID][tk.Attempt] = result
					if done {
						log.finished[tk.ID]++
					}
				})
			}
		}
	case 2:
		st.AssignTask(ctx, store.AssignTaskParams{TaskID: id, WorkerID: w, Now: at})
	case 3:
		st.UnassignTask(ctx, store.UnassignTaskParams{TaskID: id, Now: at})
	case 4:
		if rng.IntN(8) == 0 && st.DeleteTask(ctx, store.DeleteTaskParams{ID: id, Now: at}) == nil {
			log.add(func() { log.deleted[id] = true })
		}
	case 5:
		st.UpdateTask(ctx, store.UpdateTaskParams{ID: id, Updates: taskwire.TaskUpdates{Priority: ptrTo(rng.IntN(101))}, Now: at})
	case 6:
		status := []taskwire.Status{taskwire.StatusPending, taskwire.StatusFailed}[rng.IntN(2)]
		st.UpdateTask(ctx, store.UpdateTaskParams{ID: id, Updates: taskwire.TaskUpdates{Status: &status}, Now: at})
	case 7:
		st.HeartbeatWorker(ctx, store.HeartbeatWorkerParams{ID: w, Now: at})
	case 8:
		// Far enough ahead that leases expire and silent workers go offline.
		st.Sweep(ctx, store.SweepParams{Now: at.Add(2 * time.Minute), WorkerTimeout: 90 * time.Second})
	case 9:
		st.UnregisterWorker(ctx, store.UnregisterWorkerParams{ID: w, Now: at})
	case 10:
		if err := st.RegisterWorker(ctx, store.RegisterWorkerParams{ID: w, Now: at}); err != nil {
			t.Errorf("RegisterWorker(%s): %v", w, err)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// allEvents reads every event after the event id after ("" for all).
func allEvents(t *testing.T, st *Store, after string) []taskwire.Event {
	t.Helper()
	var all []taskwire.Event
	for {
		page, err := st.ReadEvents(t.Context(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

// checkRound checks the invariants of TestMixedRace after a round.
func checkRound(ctx context.Context, t *testing.T, st *Store, log *raceLog, ids, workers []string) {
	t.Helper()
	events := map[string]map[taskwire.EventType]int{}
	for _, ev := range allEvents(t, st, "") {
		if events[ev.TaskID] == nil {
			events[ev.TaskID] = map[taskwire.EventType]int{}
		}
		events[ev.TaskID][ev.Type]++
	}
	if err := st.flushOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		attempts := log.claims[id]
		if len(slices.Compact(slices.Sorted(slices.Values(attempts)))) != len(attempts) {
			t.Errorf("%s: attempts handed out %v, one twice", id, attempts)
		}
		if n := events[id][taskwire.EventTaskClaimed]; n != len(attempts) {
			t.Errorf("%s: %d task.claimed events for %d claims", id, n, len(attempts))
		}
		if n := events[id][taskwire.EventTaskDeleted]; (n == 1) != log.deleted[id] || n > 1 {
			t.Errorf("%s: %d task.deleted events, delete acknowledged %v", id, n, log.deleted[id])
		}
		if n := events[id][taskwire.EventTaskCompleted]; n < log.finished[id] {
			t.Errorf("%s: %d task.completed events for %d completions", id, n, log.finished[id])
		}
		r, err := st.redisTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkPlaced(ctx, t, st, id, r, workers)
		pg, err := st.pgTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case log.deleted[id] && (r != nil || pg != nil):
			t.Errorf("%s: deleted, but Redis holds %v and PostgreSQL %v", id, r != nil, pg != nil)
		case r == nil || pg == nil:
			if r != pg {
				t.Errorf("%s: Redis holds %v, PostgreSQL %v", id, r != nil, pg != nil)
			}
		case r.ver != pg.ver || r.Status != pg.Status || r.Attempt != pg.Attempt || r.AssignedTo != pg.AssignedTo:
			t.Errorf("%s: Redis %s/%d/%q v%d, PostgreSQL %s/%d/%q v%d", id, r.Status, r.Attempt, r.AssignedTo, r.ver,
				pg.Status, pg.Attempt, pg.AssignedTo, pg.ver)
		}
		if r != nil && r.Status == taskwire.StatusCompleted && r.ResultSize > 0 {
			got, err := st.GetTask(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := log.results[id][got.Attempt]; !ok || string(got.Result) != want {
				t.Errorf("%s: completed at attempt %d with %s, acknowledged %v", id, got.Attempt, got.Result, log.results[id])
			}
		}
	}
}

// checkPlaced checks that task id, whose hash is r (nil: gone), is in
// exactly the sets its state calls for (see txn.place).
func checkPlaced(ctx context.Context, t *testing.T, st *Store, id string, r *taskState, workers []string) {
	t.Helper()
	k := st.k
	in := map[string]float64{}
	zsets := []string{k.ready(taskwire.DefaultQueue), k.delayed(), k.leases()}
	for _, w := range workers {
		zsets = append(zsets, k.reserved(w))
	}
	for _, z := range zsets {
		if sc, err := st.rdb.ZScore(ctx, z, id).Result(); err == nil {
			in[z] = sc
		}
	}
	for _, w := range workers {
		if ok, _ := st.rdb.SIsMember(ctx, k.held(w), id).Result(); ok {
			in[k.held(w)] = 0
		}
	}
	want := map[string]bool{}
	if r != nil {
		switch r.Status {
		case taskwire.StatusPending:
			if r.AssignedTo != "" {
				want[k.reserved(r.AssignedTo)] = true
			} else {
				want[k.ready(r.Queue)] = true
			}
		case taskwire.StatusInProgress:
			want[k.leases()] = true
			if sc := in[k.leases()]; sc != float64(r.LeaseExpiresAt.UnixMilli()) {
				t.Errorf("%s: lease entry %s, task's lease %d", id, strconv.FormatFloat(sc, 'f', 0, 64),
					r.LeaseExpiresAt.UnixMilli())
			}
		}
		if r.AssignedTo != "" && !r.Status.Final() {
			want[k.held(r.AssignedTo)] = true
		}
	}
	var got []string
	for key := range in {
		got = append(got, key)
	}
	var wantKeys []string
	for key := range want {
		wantKeys = append(wantKeys, key)
	}
	slices.Sort(got)
	slices.Sort(wantKeys)
	if !slices.Equal(got, wantKeys) {
		state := "gone"
		if r != nil {
			state = fmt.Sprintf("%s assigned to %q", r.Status, r.AssignedTo)
		}
		t.Errorf("%s (%s) is in %v, want %v", id, state, got, wantKeys)
	}
}

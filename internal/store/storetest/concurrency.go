package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

func testConcurrency(t *testing.T, newStore newStoreFunc) {
	// Many workers claiming at once: every task is handed out, each to
	// exactly one worker.
	t.Run("ClaimRace", func(t *testing.T) {
		t.Parallel()
		const tasks, workers, goroutines = 500, 5, 20
		s := setup(t, newStore)
		for n := 1; n <= tasks; n++ {
			tk := newTask(n)
			tk.Priority = n % 7
			s.create(tk)
		}
		for w := range workers {
			s.register(fmt.Sprintf("w%d", w))
		}

		var (
			mu      sync.Mutex
			claimer = map[string]string{} // task id -> worker
			twice   []string
			wg      sync.WaitGroup
			start   = make(chan struct{}) // all go at once
		)
		for g := range goroutines {
			wg.Go(func() {
				<-start
				worker := fmt.Sprintf("w%d", g%workers)
				for {
					got, err := s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{
						WorkerID: worker, MaxTasks: 1 + g%taskwire.MaxClaimTasks, Now: t0.Add(time.Second)})
					if err != nil {
						t.Errorf("%s: ClaimTasks: %v", worker, err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, tk := range got {
						if prev, ok := claimer[tk.ID]; ok {
							twice = append(twice, fmt.Sprintf("%s to %s and %s", tk.ID, prev, worker))
						}
						claimer[tk.ID] = worker
						if tk.AssignedTo != worker || tk.Status != taskwire.StatusInProgress || tk.Attempt != 1 {
							t.Errorf("%s claimed %s: %s, assigned to %q, attempt %d", worker, tk.ID, tk.Status, tk.AssignedTo, tk.Attempt)
						}
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if len(twice) > 0 {
			t.Errorf("%d tasks handed out twice, first %v", len(twice), twice[:min(len(twice), 5)])
		}
		if len(claimer) != tasks {
			t.Errorf("%d distinct tasks claimed, want all %d", len(claimer), tasks)
		}
		held := 0
		for _, w := range s.workers() {
			held += len(w.Tasks)
			for _, id := range w.Tasks {
				if claimer[id] != w.ID {
					t.Errorf("ListWorkers: %s holds %s, claimed by %q", w.ID, id, claimer[id])
				}
			}
		}
		if held != tasks {
			t.Errorf("ListWorkers: workers hold %d tasks, want %d", held, tasks)
		}
		if ids, total := s.list(store.ListTasksParams{Status: taskwire.StatusPending, Limit: 10}); total != 0 {
			t.Errorf("pending after the race: %v, total %d; want none", ids, total)
		}
	})

	// Creates racing with one idempotency key make one task; every caller
	// gets it.
	t.Run("IdempotencyRace", func(t *testing.T) {
		t.Parallel()
		const goroutines = 20
		s := setup(t, newStore)
		var (
			mu      sync.Mutex
			created []string
			got     = map[string]int{} // returned id -> callers
			wg      sync.WaitGroup
			start   = make(chan struct{})
		)
		for g := range goroutines {
			wg.Go(func() {
				<-start
				tk := newTask(g + 1)
				tk.CreatedAt = t0
				task, ok, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{
					Task: tk, IdempotencyKey: "same", IdempotencyWindow: time.Hour, Now: t0})
				if err != nil {
					t.Errorf("CreateTask(%s): %v", tk.ID, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					created = append(created, tk.ID)
				}
				got[task.ID]++
			})
		}
		close(start)
		wg.Wait()
		if len(created) != 1 {
			t.Fatalf("created %v, want exactly one task", created)
		}
		if got[created[0]] != goroutines || len(got) != 1 {
			t.Errorf("callers got %v, want all %d to get %s", got, goroutines, created[0])
		}
		if ids, total := s.list(store.ListTasksParams{Limit: 100}); total != 1 {
			t.Errorf("ListTasks = %v, total %d; want one task", ids, total)
		}
	})

	// Completions racing with different outcomes: one wins, the others are
	// conflicts, and the winner's outcome is stored.
	t.Run("CompleteRace", func(t *testing.T) {
		t.Parallel()
		const goroutines = 20
		s := setup(t, newStore)
		inProgress(s)
		var (
			mu        sync.Mutex
			winners   []string
			conflicts int
			wg        sync.WaitGroup
			start     = make(chan struct{})
		)
		for g := range goroutines {
			wg.Go(func() {
				<-start
				msg := fmt.Sprintf("error %d", g)
				_, _, err := s.st.CompleteTask(s.ctx, store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Attempt: ptr(1),
					Failed: true, Error: msg, Now: t0.Add(time.Duration(g+10) * time.Second)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					winners = append(winners, msg)
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Errorf("CompleteTask(%q): %v", msg, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || conflicts != goroutines-1 {
			t.Fatalf("%d winners %v and %d conflicts; want 1 and %d", len(winners), winners, conflicts, goroutines-1)
		}
		if got := s.get(taskID(1)); got.Status != taskwire.StatusFailed || got.Error != winners[0] {
			t.Errorf("stored %s with error %q, want failed with the winner's %q", got.Status, got.Error, winners[0])
		}
	})

	// Identical completions racing (a worker's resend while its first call
	// is in flight): every call succeeds, and exactly one finalized the
	// task, so that the completion is counted once.
	t.Run("CompleteSameRace", func(t *testing.T) {
		t.Parallel()
		const goroutines = 20
		s := setup(t, newStore)
		inProgress(s)
		p := store.CompleteTaskParams{ID: taskID(1), WorkerID: "w1", Attempt: ptr(1),
			Result: json.RawMessage(`{"n":1}`), Now: t0.Add(10 * time.Second)}
		var (
			finalized atomic.Int32
			wg        sync.WaitGroup
			start     = make(chan struct{})
		)
		for range goroutines {
			wg.Go(func() {
				<-start
				_, done, err := s.st.CompleteTask(s.ctx, p)
				if err != nil {
					t.Errorf("CompleteTask: %v", err)
				}
				if done {
					finalized.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := finalized.Load(); n != 1 {
			t.Errorf("%d of %d identical completions finalized the task, want 1", n, goroutines)
		}
	})

	// The worker completing with a result races an admin failing the same
	// attempt, many times: whichever wins, the task reads back with
	// exactly its outcome, result bytes included.
	t.Run("CompleteResultRace", func(t *testing.T) {
		t.Parallel()
		const rounds = 40
		s := setup(t, newStore)
		for n := 1; n <= rounds; n++ {
			completeResultRound(s, n)
		}
	})

	// A delete and an update race the create of their task, many times
	// (the id is known before the create returns: to a second create with
	// the same idempotency key, or to a list): an acknowledged delete stays
	// deleted, and the task's events begin with its one task.created.
	t.Run("CreateRace", func(t *testing.T) {
		t.Parallel()
		const rounds = 150
		s := setup(t, newStore)
		deleted := map[string]bool{}
		for n := 1; n <= rounds; n++ {
			if createRaceRound(s, n) {
				deleted[taskID(n)] = true
			}
		}
		byTask := map[string][]taskwire.EventType{}
		for _, ev := range s.eventsAfter("") {
			byTask[ev.TaskID] = append(byTask[ev.TaskID], ev.Type)
		}
		for n := 1; n <= rounds; n++ {
			id := taskID(n)
			types := byTask[id]
			if len(types) == 0 || types[0] != taskwire.EventTaskCreated ||
				slices.Index(types[1:], taskwire.EventTaskCreated) >= 0 {
				t.Errorf("%s: events %v, want one task.created first", id, types)
			}
			if deleted[id] && types[len(types)-1] != taskwire.EventTaskDeleted {
				t.Errorf("%s: deleted, events %v, want task.deleted last", id, types)
			}
		}
	})

	// Pages listed while tasks are created agree with their totals: the
	// total is never below the rows up to the page's end, and it is above
	// them whenever more matching tasks follow the page, so that a client
	// paging until the total is reached never stops early. Newest first,
	// every create pushes the rows further down the pages.
	t.Run("ListRace", func(t *testing.T) { t.Parallel(); listRace(t, newStore) })
}

// createRaceRound creates task n while a delete and a priority update of
// it are tried again and again until each is answered otherwise than
// not found (or the create has returned), then checks that an
// acknowledged delete left no task. It reports whether the delete was
// acknowledged.
func createRaceRound(s *bundle, n int) (deleted bool) {
	s.t.Helper()
	tk := newTask(n)
	var (
		wg        sync.WaitGroup
		created   = make(chan struct{})
		createErr error
		errs      [2]error
	)
	wg.Go(func() {
		defer close(created)
		_, _, createErr = s.st.CreateTask(s.ctx, store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
	})
	ops := [2]func() error{
		func() error {
			return s.st.DeleteTask(s.ctx, store.DeleteTaskParams{ID: tk.ID, Now: tk.CreatedAt})
		},
		func() error {
			_, err := s.st.UpdateTask(s.ctx, store.UpdateTaskParams{ID: tk.ID,
				Updates: taskwire.TaskUpdates{Priority: ptr(60)}, Now: tk.CreatedAt})
			return err
		},
	}
	for i, op := range ops {
		wg.Go(func() {
			for {
				errs[i] = op()
				if !errors.Is(errs[i], store.ErrNotFound) {
					return
				}
				select {
				case <-created:
					return
				default:
				}
			}
		})
	}
	wg.Wait()
	if createErr != nil {
		s.t.Fatalf("round %d: CreateTask: %v", n, createErr)
	}
	if errs[0] != nil {
		return false // not found, or refused: not acknowledged
	}
	if got, err := s.st.GetTask(s.ctx, tk.ID); !errors.Is(err, store.ErrNotFound) {
		s.t.Fatalf("round %d: delete acknowledged, then GetTask = %v, %v; want not found", n, got, err)
	}
	return true
}

// completeResultRound creates task n, has w1 claim it, then completes it
// with a result as w1 and fails it as an admin at once, and checks the
// stored task against the one completion that succeeded.
func completeResultRound(s *bundle, n int) {
	s.t.Helper()
	id := taskID(n)
	s.claimed(newTask(n), "w1", t0.Add(time.Second))
	result := json.RawMessage(fmt.Sprintf(`{"round":%d,"data":"%s"}`, n, strings.Repeat("x", 100)))
	tries := []store.CompleteTaskParams{
		{ID: id, WorkerID: "w1", Attempt: ptr(1), Result: result, Now: t0.Add(2 * time.Second)},
		{ID: id, Attempt: ptr(1), Failed: true, Error: "failed by an admin", By: "admin", Now: t0.Add(2 * time.Second)},
	}
	errs := make([]error, len(tries))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, p := range tries {
		wg.Go(func() {
			<-start
			_, _, errs[i] = s.st.CompleteTask(s.ctx, p)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			s.t.Fatalf("round %d: both completions succeeded", n)
		case !errors.Is(err, store.ErrConflict):
			s.t.Fatalf("round %d: CompleteTask(%s): %v", n, tries[i].By, err)
		}
	}
	if winner < 0 {
		s.t.Fatalf("round %d: no completion succeeded: %v", n, errs)
	}
	got, err := s.st.GetTask(s.ctx, id)
	if err != nil {
		s.t.Fatalf("round %d: GetTask after the %d won: %v", n, winner, err)
	}
	want := tries[winner]
	if !got.Status.Final() || (got.Status == taskwire.StatusFailed) != want.Failed || got.Error != want.Error {
		s.t.Fatalf("round %d: stored %s with error %q; want the winner's (failed %v, error %q)",
			n, got.Status, got.Error, want.Failed, want.Error)
	}
	if what := sameBytes(want.Result, got.Result); what != "" {
		s.t.Fatalf("round %d: GetTask result: %s", n, what)
	}
	if !want.Failed {
		s.wantResult(id, want.Result)
	}
}

// listRace lists pages, newest first, of every task and of the pending
// tasks of the default queue (every task is both) while creators add
// tasks, and checks each page against its total: every task whose create
// was acknowledged before a list began is one the list must count.
func listRace(t *testing.T, newStore newStoreFunc) {
	const (
		first    = 40   // tasks created before the lists begin
		last     = 2000 // the creators stop there, however slow the lists
		creators = 4
		lists    = 300
		limit    = 10
	)
	s := setup(t, newStore)
	for n := 1; n <= first; n++ {
		s.create(newTask(n))
	}
	var (
		next  atomic.Int64 // the last task number handed to a creator
		acked atomic.Int64 // tasks whose create was acknowledged
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	next.Store(first)
	acked.Store(first)
	for range creators {
		wg.Go(func() {
			for {
				n := int(next.Add(1))
				select {
				case <-stop:
					return
				default:
					if n > last {
						return
					}
				}
				tk := newTask(n)
				if _, _, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{Task: tk, Now: tk.CreatedAt}); err != nil {
					t.Errorf("CreateTask(%s): %v", tk.ID, err)
					return
				}
				acked.Add(1)
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	filters := []store.ListTasksParams{
		{},
		{Status: taskwire.StatusPending, Queue: taskwire.DefaultQueue},
	}
	for i := range lists {
		p := filters[i%len(filters)]
		known := int(acked.Load())
		// Pages near the end, where the total decides whether there is
		// another: from a page short of the end to one that starts there.
		p.Limit, p.Offset, p.OrderBy, p.Desc = limit, max(0, known-i%(2*limit)), store.OrderByCreatedAt, true
		page, total := s.list(p)
		end := p.Offset + len(page)
		switch {
		case len(page) > 0 && total < end:
			t.Fatalf("list %d (%+v): total %d, below the %d rows up to the page's end", i, p, total, end)
		case known > end && total <= end:
			t.Fatalf("list %d (%+v): total %d with %d rows up to the page's end, but %d tasks were there before the call",
				i, p, total, end, known)
		}
	}
}

// Package storetest is the conformance suite of store.Store. Every backend
// runs it with Run; a backend conforms when the whole suite passes. The
// tests state the storage contract of store.go as behaviour a user would
// notice, each rule once; where the prose of store.go leaves a choice open,
// the test chosen here is the contract, and its comment says so.
//
// Conventions of the suite: the store never reads a clock, so every call
// carries an explicit time derived from t0; task ids are "t-" plus 26
// digits, so that they sort in creation order; metadata is compared as a
// JSON value (a backend may re-encode it), results byte for byte.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// Run runs the whole suite; newStore returns a fresh, empty, isolated store
// for one test (it registers its own cleanup with t.Cleanup). Every test
// runs in parallel with the others, each on its own store, so newStore is
// called concurrently. Tests that move very large results (64 MiB) are
// skipped with -short.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	run(t, newStore, allAreas)
}

// RunCore runs the claim and complete core of the suite (create, claim,
// complete, concurrency), for a backend deployment that is costly to set
// up, such as a Redis Cluster.
func RunCore(t *testing.T, newStore func(t *testing.T) store.Store) {
	core := map[string]bool{"Create": true, "Claim": true, "Complete": true, "Concurrency": true}
	var areas []area
	for _, a := range allAreas {
		if core[a.name] {
			areas = append(areas, a)
		}
	}
	run(t, newStore, areas)
}

// area is one file's worth of the suite.
type area struct {
	name string
	run  func(*testing.T, newStoreFunc)
}

var allAreas = []area{
	{"Create", testCreate},
	{"Claim", testClaim},
	{"Complete", testComplete},
	{"Update", testUpdate},
	{"Assign", testAssign},
	{"Delete", testDelete},
	{"List", testList},
	{"Worker", testWorker},
	{"Result", testResult},
	{"Stats", testStats},
	{"Concurrency", testConcurrency},
	{"Sweep", testSweep},
	{"Events", testEvents},
}

func run(t *testing.T, newStore newStoreFunc, areas []area) {
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			a.run(t, newStore)
		})
	}
}

type newStoreFunc = func(t *testing.T) store.Store

// t0 is the suite's epoch: every time a test passes derives from it.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// taskID returns the id of task n; ids sort as n does.
func taskID(n int) string { return fmt.Sprintf("t-%026d", n) }

// newTask returns task n as task.create would make it: pending in the
// default queue, priority 50, created, updated and ready n ms after t0, so
// that tasks are created in the order of their numbers.
func newTask(n int) taskwire.Task {
	at := t0.Add(time.Duration(n) * time.Millisecond)
	return taskwire.Task{
		ID:          taskID(n),
		Queue:       taskwire.DefaultQueue,
		Text:        fmt.Sprintf("task %d", n),
		Status:      taskwire.StatusPending,
		Priority:    taskwire.DefaultPriority,
		MaxAttempts: taskwire.DefaultMaxAttempts,
		LeaseMs:     60_000,
		RunAt:       at,
		CreatedAt:   at,
		UpdatedAt:   at,
	}
}

// bundle is what one test works with: its own store and the test's context.
type bundle struct {
	t   *testing.T
	ctx context.Context
	st  store.Store
	// registered are the workers register has registered, so that helpers
	// register each worker once.
	registered map[string]bool
}

// setup returns a bundle on a fresh store from newStore.
func setup(t *testing.T, newStore newStoreFunc) *bundle {
	t.Helper()
	return &bundle{t: t, ctx: t.Context(), st: newStore(t), registered: map[string]bool{}}
}

// create creates each task at its CreatedAt.
func (s *bundle) create(tasks ...taskwire.Task) {
	s.t.Helper()
	for _, tk := range tasks {
		_, created, err := s.st.CreateTask(s.ctx, store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
		if err != nil || !created {
			s.t.Fatalf("CreateTask(%s) = created %v, %v; want created", tk.ID, created, err)
		}
	}
}

// register registers worker id at t0 with the given queues.
func (s *bundle) register(id string, queues ...string) {
	s.t.Helper()
	if err := s.st.RegisterWorker(s.ctx, store.RegisterWorkerParams{ID: id, Queues: queues, Now: t0}); err != nil {
		s.t.Fatalf("RegisterWorker(%s): %v", id, err)
	}
	s.registered[id] = true
}

// claim has worker claim up to maxTasks tasks of queues at now.
func (s *bundle) claim(worker string, now time.Time, maxTasks int, queues ...string) []*taskwire.Task {
	s.t.Helper()
	got, err := s.st.ClaimTasks(s.ctx, store.ClaimTasksParams{WorkerID: worker, Queues: queues, MaxTasks: maxTasks, Now: now})
	if err != nil {
		s.t.Fatalf("ClaimTasks(%s): %v", worker, err)
	}
	return got
}

// claimed creates tk, registers worker when needed and has it claim tk at
// now from tk's queue; tk must be the only ready task of its queue.
func (s *bundle) claimed(tk taskwire.Task, worker string, now time.Time) *taskwire.Task {
	s.t.Helper()
	s.create(tk)
	return s.reclaim(tk.ID, tk.Queue, worker, now)
}

// reclaim has worker (registered when needed) claim task id, pending in
// queue, at now.
func (s *bundle) reclaim(id, queue, worker string, now time.Time) *taskwire.Task {
	s.t.Helper()
	if !s.registered[worker] {
		s.register(worker)
	}
	got := s.claim(worker, now, 1, queue)
	if len(got) != 1 || got[0].ID != id {
		s.t.Fatalf("%s claimed %v, want [%s]", worker, ids(got), id)
	}
	return got[0]
}

// complete completes a task, which the call must finalize.
func (s *bundle) complete(p store.CompleteTaskParams) *taskwire.Task {
	s.t.Helper()
	got, finalized, err := s.st.CompleteTask(s.ctx, p)
	if err != nil || !finalized {
		s.t.Fatalf("CompleteTask(%s) = finalized %v, %v; want finalized", p.ID, finalized, err)
	}
	return got
}

// assign reserves task id for worker (registered when needed) at now.
func (s *bundle) assign(id, worker string, now time.Time) *taskwire.Task {
	s.t.Helper()
	if !s.registered[worker] {
		s.register(worker)
	}
	got, err := s.st.AssignTask(s.ctx, store.AssignTaskParams{TaskID: id, WorkerID: worker, Now: now})
	if err != nil {
		s.t.Fatalf("AssignTask(%s, %s): %v", id, worker, err)
	}
	return got
}

// unassign clears the assignment of task id at now.
func (s *bundle) unassign(id string, now time.Time) {
	s.t.Helper()
	if _, _, err := s.st.UnassignTask(s.ctx, store.UnassignTaskParams{TaskID: id, Now: now}); err != nil {
		s.t.Fatalf("UnassignTask(%s): %v", id, err)
	}
}

// update updates a task and fails the test on error.
func (s *bundle) update(p store.UpdateTaskParams) *taskwire.Task {
	s.t.Helper()
	got, err := s.st.UpdateTask(s.ctx, p)
	if err != nil {
		s.t.Fatalf("UpdateTask(%s): %v", p.ID, err)
	}
	return got
}

// get returns task id.
func (s *bundle) get(id string) *taskwire.Task {
	s.t.Helper()
	got, err := s.st.GetTask(s.ctx, id)
	if err != nil {
		s.t.Fatalf("GetTask(%s): %v", id, err)
	}
	return got
}

// list returns the ids of the page p selects and the total count; p
// without OrderBy is ordered by creation.
func (s *bundle) list(p store.ListTasksParams) ([]string, int) {
	s.t.Helper()
	if p.OrderBy == "" {
		p.OrderBy = store.OrderByCreatedAt
	}
	tasks, total, err := s.st.ListTasks(s.ctx, p)
	if err != nil {
		s.t.Fatalf("ListTasks(%+v): %v", p, err)
	}
	return ids(tasks), total
}

// wantStored checks that GetTask returns want, result included.
func (s *bundle) wantStored(want taskwire.Task) {
	s.t.Helper()
	if diff := cmp.Diff(&want, s.get(want.ID), taskOpts); diff != "" {
		s.t.Errorf("GetTask(%s) (-want +got):\n%s", want.ID, diff)
	}
}

// wantReturned checks a task an operation returned "without its result"
// against want, result fields left out.
func wantReturned(t *testing.T, op string, want taskwire.Task, got *taskwire.Task) {
	t.Helper()
	if diff := cmp.Diff(&want, got, taskOpts, withoutResult); diff != "" {
		t.Errorf("%s returned (-want +got):\n%s", op, diff)
	}
}

// taskOpts compare tasks as a user sees them: metadata as a JSON value,
// results byte for byte, nil and empty alike.
var taskOpts = cmp.Options{
	cmp.FilterPath(func(p cmp.Path) bool { return !isMetadata(p) }, cmpopts.EquateEmpty()),
	cmp.FilterPath(isMetadata, cmp.Transformer("jsonValue", jsonValue)),
}

// isMetadata reports whether p leads to a metadata field.
func isMetadata(p cmp.Path) bool {
	sf, ok := p.Last().(cmp.StructField)
	return ok && sf.Name() == "Metadata" && sf.Type() == reflect.TypeFor[json.RawMessage]()
}

// withoutResult leaves out the result fields, which operations other than
// GetTask and ListTasks need not return.
var withoutResult = cmpopts.IgnoreFields(taskwire.Task{}, "Result", "ResultSize", "ResultTruncated")

// jsonValue decodes m for comparison; null and nothing are both nil.
func jsonValue(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(m, &v); err != nil {
		return "invalid JSON: " + string(m)
	}
	return v
}

// ids returns the ids of tasks in their order.
func ids(tasks []*taskwire.Task) []string {
	out := make([]string, 0, len(tasks))
	for _, tk := range tasks {
		out = append(out, tk.ID)
	}
	return out
}

// taskIDs returns the ids of tasks ns.
func taskIDs(ns ...int) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, taskID(n))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// wantTaskNotFound checks that err is a *store.TaskNotFoundError for id
// that matches store.ErrNotFound.
func wantTaskNotFound(t *testing.T, err error, id string) {
	t.Helper()
	var e *store.TaskNotFoundError
	switch {
	case !errors.As(err, &e):
		t.Errorf("err = %v, want *store.TaskNotFoundError", err)
	case e.ID != id:
		t.Errorf("TaskNotFoundError.ID = %q, want %q", e.ID, id)
	case !errors.Is(err, store.ErrNotFound):
		t.Errorf("errors.Is(%v, store.ErrNotFound) = false", err)
	}
}

// wantWorkerNotFound checks that err is a *store.WorkerNotFoundError for
// id that matches store.ErrNotFound.
func wantWorkerNotFound(t *testing.T, err error, id string) {
	t.Helper()
	var e *store.WorkerNotFoundError
	switch {
	case !errors.As(err, &e):
		t.Errorf("err = %v, want *store.WorkerNotFoundError", err)
	case e.ID != id:
		t.Errorf("WorkerNotFoundError.ID = %q, want %q", e.ID, id)
	case !errors.Is(err, store.ErrNotFound):
		t.Errorf("errors.Is(%v, store.ErrNotFound) = false", err)
	}
}

// wantConflict checks that err is a *store.ConflictError naming task id in
// the given status and assignment, with a reason, that matches
// store.ErrConflict.
func wantConflict(t *testing.T, err error, id string, status taskwire.Status, assignedTo string) {
	t.Helper()
	var e *store.ConflictError
	if !errors.As(err, &e) {
		t.Errorf("err = %v, want *store.ConflictError", err)
		return
	}
	want := store.ConflictError{TaskID: id, Status: status, AssignedTo: assignedTo}
	if diff := cmp.Diff(want, *e, cmpopts.IgnoreFields(store.ConflictError{}, "Reason", "OtherWorker")); diff != "" {
		t.Errorf("ConflictError (-want +got):\n%s", diff)
	}
	if e.Reason == "" {
		t.Errorf("ConflictError.Reason is empty, want words on what is in the way")
	}
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("errors.Is(%v, store.ErrConflict) = false", err)
	}
}

// wantOtherWorker checks that err, a *store.ConflictError, says whether
// all in the way is another worker holding or reserving the task.
func wantOtherWorker(t *testing.T, err error, want bool) {
	t.Helper()
	var e *store.ConflictError
	if errors.As(err, &e) && e.OtherWorker != want {
		t.Errorf("ConflictError.OtherWorker = %v, want %v (%v)", e.OtherWorker, want, err)
	}
}

// unchanged checks that task before is stored as it was.
func (s *bundle) unchanged(before *taskwire.Task) {
	s.t.Helper()
	if diff := cmp.Diff(before, s.get(before.ID), taskOpts); diff != "" {
		s.t.Errorf("task %s changed (-before +after):\n%s", before.ID, diff)
	}
}

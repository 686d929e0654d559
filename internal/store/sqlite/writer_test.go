package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// An op that fails in a batch is rolled back alone: the ops before and
// after it in the same transaction commit.
func TestBatchRollsBackFailedOpAlone(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	ctx := t.Context()

	// Hold the writer in a first batch until the next ops are all queued,
	// so that they form one batch.
	running, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- s.w.do(ctx, func(*writeTx) error {
			close(running)
			<-release
			return nil
		})
	}()
	<-running

	insert := func(id string) func(*writeTx) error {
		return func(tx *writeTx) error {
			_, err := tx.exec("INSERT INTO workers (id, status, roles, queues, registered_at, last_seen) VALUES (?, 'online', 'null', 'null', 0, 0)", id)
			return err
		}
	}
	errBoom := errors.New("boom")
	ops := []func(*writeTx) error{
		insert("a"),
		func(tx *writeTx) error {
			if err := insert("b")(tx); err != nil {
				return err
			}
			return errBoom
		},
		insert("c"),
		insert("a"), // duplicate key: fails in SQLite
	}
	errs := make([]chan error, len(ops))
	for i, fn := range ops {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- s.w.do(ctx, fn) }()
		for len(s.w.ops) != i+1 { // queued in order
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	got := make([]error, len(ops))
	for i := range ops {
		got[i] = <-errs[i]
	}
	if got[0] != nil || !errors.Is(got[1], errBoom) || got[2] != nil || got[3] == nil {
		t.Errorf("op errors = %v, want [nil boom nil constraint]", got)
	}
	workers, err := s.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range workers {
		names = append(names, w.ID)
	}
	if len(names) != 2 || names[0] != "a" || names[1] != "c" {
		t.Errorf("workers = %v, want [a c]", names)
	}
}

// Close finishes the ops already submitted; later ones fail. What was
// acknowledged is there when the file is opened again.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "taskwire.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	const queued = 10
	done := make(chan error, queued)
	for n := range queued {
		go func() { done <- createErr(t, s, n+1) }()
	}
	waitQueued(s, queued)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	for !s.w.isClosed() {
		time.Sleep(time.Millisecond)
	}
	if err := createErr(t, s, 99); !errors.Is(err, errClosed) {
		t.Errorf("create after Close: %v, want errClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for range queued {
		if err := <-done; err != nil {
			t.Errorf("create queued before Close: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s, err = Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, total, err := s.ListTasks(t.Context(), store.ListTasksParams{}); err != nil || total != queued {
		t.Errorf("after reopening: %d tasks, %v; want the %d acknowledged", total, err, queued)
	}
}

func createErr(t *testing.T, s *Store, n int) error {
	tk := task(n)
	_, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
	return err
}

// A lone op that fails (a batch of one, which runs without a savepoint)
// leaves nothing behind: not its writes, not its events, and the writer
// goes on with the next op.
func TestLoneFailedOpLeavesNothing(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	ctx := t.Context()
	errBoom := errors.New("boom")
	before := s.w.lastEvent.Load()
	err := s.w.do(ctx, func(tx *writeTx) error {
		if _, err := tx.exec("INSERT INTO workers (id, status, roles, queues, registered_at, last_seen) VALUES ('a', 'online', 'null', 'null', 0, 0)"); err != nil {
			return err
		}
		tx.appendEvent(store.WorkerOfflineEvent("a", t0, t0))
		tx.count("q", "pending", 1)
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("lone op = %v, want its own error", err)
	}
	register(t, s, "b")
	workers, err := s.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(workers) != 1 || workers[0].ID != "b" {
		t.Errorf("workers = %+v, want b alone", workers)
	}
	if got := s.w.lastEvent.Load(); got != before+1 {
		t.Errorf("newest event = %d, want %d: the registration's alone", got, before+1)
	}
	if n := s.w.counts.sum("q", ""); n != 0 {
		t.Errorf("tasks counted in queue q = %d, want 0", n)
	}
}

// A caller whose context ends gets the outcome of its op once the op has
// started (the change was made: success), and its context's error only
// when the op never ran (nothing changed).
func TestCanceledCallerGetsTheOutcome(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	release := holdWriter(t, s)

	// Op 1 starts, then the op after it in the same batch ends op 1's
	// context while the batch has yet to commit.
	ctx1, cancel1 := context.WithCancel(t.Context())
	created := goCreate(ctx1, s, 1)
	waitQueued(s, 1)
	go s.w.do(t.Context(), func(*writeTx) error {
		cancel1()
		time.Sleep(50 * time.Millisecond) // op 1's caller sees its context end first
		return nil
	})
	waitQueued(s, 2)

	// Op 3's context ends while it waits behind the others: it never runs.
	ctx3, cancel3 := context.WithCancel(t.Context())
	notCreated := goCreate(ctx3, s, 3)
	waitQueued(s, 3)
	cancel3()
	release()

	if err := <-created; err != nil {
		t.Errorf("create whose context ended after it started: %v, want its success", err)
	}
	if _, err := s.GetTask(t.Context(), task(1).ID); err != nil {
		t.Errorf("GetTask(%s): %v", task(1).ID, err)
	}
	if err := <-notCreated; !errors.Is(err, context.Canceled) {
		t.Errorf("create whose context ended before it started: %v, want context.Canceled", err)
	}
	if _, err := s.GetTask(t.Context(), task(3).ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask(%s) of the create that never ran: %v, want not found", task(3).ID, err)
	}
}

// holdWriter keeps s's writer busy with an op of its own until release is
// called, so that the ops submitted meanwhile wait in its queue.
func holdWriter(t *testing.T, s *Store) (release func()) {
	running, done := make(chan struct{}), make(chan struct{})
	go s.w.do(t.Context(), func(*writeTx) error {
		close(running)
		<-done
		return nil
	})
	<-running
	return func() { close(done) }
}

// waitQueued waits until n ops wait in the queue of s's writer.
func waitQueued(s *Store, n int) {
	for len(s.w.ops) < n {
		time.Sleep(time.Millisecond)
	}
}

// goCreate creates task n with ctx in a goroutine of its own; the channel
// gets its error.
func goCreate(ctx context.Context, s *Store, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := s.CreateTask(ctx, store.CreateTaskParams{Task: task(n), Now: task(n).CreatedAt})
		done <- err
	}()
	return done
}

// When SQLite itself rolls back a batch's transaction (as it may on a
// full disk, an I/O error or lack of memory) while one op runs, every op
// of the batch is answered unavailable, none is kept, and the next batch
// commits as any other.
func TestTransactionLostMidBatch(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	create(t, s, task(1))
	release := holdWriter(t, s)
	before := goCreate(t.Context(), s, 2)
	waitQueued(s, 1)
	lost := make(chan error, 1)
	go func() {
		lost <- s.w.do(t.Context(), func(tx *writeTx) error {
			if _, err := tx.exec("ROLLBACK"); err != nil { // as SQLite does on such errors
				return err
			}
			return errors.New("disk full")
		})
	}()
	waitQueued(s, 2)
	after := goCreate(t.Context(), s, 3)
	waitQueued(s, 3)
	release()
	for name, ch := range map[string]<-chan error{"the create before": before, "the create after": after} {
		if err := <-ch; !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: %v, want unavailable", name, err)
		}
	}
	if err := <-lost; err == nil {
		t.Error("the op that lost the transaction succeeded")
	}
	create(t, s, task(4))
	for _, n := range []int{2, 3} {
		if _, err := s.GetTask(t.Context(), task(n).ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetTask(%s) of a lost batch: %v, want not found", task(n).ID, err)
		}
	}
	stats, err := s.Stats(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Queues) != 1 || stats.Queues[0].ByStatus[taskwire.StatusPending] != 2 {
		t.Errorf("pending tasks counted: %+v, want 2", stats.Queues)
	}
}

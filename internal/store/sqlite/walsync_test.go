package sqlite

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// A change is answered only once the WAL is on disk, while the writer goes
// on committing behind the fsync; a claim committed meanwhile is answered
// only after the fsync that covers the creation of the task it claims.
func TestAnsweredAfterWALSync(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	ctx := t.Context()
	register(t, s, "w1")
	flushing, released := make(chan struct{}, 16), make(chan struct{})
	release := sync.OnceFunc(func() { close(released) })
	t.Cleanup(release) // before the store closes: Close waits for the syncer
	s.w.sync.flush = func(f *os.File) error {
		flushing <- struct{}{}
		<-released
		return fdatasync(f)
	}
	tk := task(1)
	created := make(chan error, 1)
	go func() {
		_, _, err := s.CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
		created <- err
	}()
	<-flushing
	claimed := make(chan error, 1)
	go func() {
		_, err := s.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: "w1", MaxTasks: 1, Now: tk.CreatedAt})
		claimed <- err
	}()
	for status(t, s, tk.ID) != taskwire.StatusInProgress { // the claim committed
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-created:
		t.Fatalf("create answered (%v) while its fsync was running", err)
	case err := <-claimed:
		t.Fatalf("claim answered (%v) before the task it claims was on disk", err)
	default:
	}
	release()
	if err := <-created; err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := <-claimed; err != nil {
		t.Fatalf("claim: %v", err)
	}
}

// A failed fsync answers the ops of its batches as unavailable: their
// changes are committed but may not be on disk.
func TestWALSyncFailureUnavailable(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	errDisk := errors.New("disk gone")
	s.w.sync.flush = func(*os.File) error { return errDisk }
	tk := task(1)
	_, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
	var unavailable *store.UnavailableError
	if !errors.As(err, &unavailable) || !errors.Is(err, errDisk) {
		t.Fatalf("create with a failing fsync: err = %v, want unavailable wrapping %v", err, errDisk)
	}
}

// status reads a task's status through the read pool.
func status(t *testing.T, s *Store, id string) taskwire.Status {
	t.Helper()
	got, err := s.GetTask(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got.Status
}

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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

// A failed fsync answers the ops of its batch as unavailable, and every
// write after it, even once an fsync would succeed again: the failed
// commit's frames may be missing from the disk, and later commits follow
// them in the WAL. Ping reports it, so the server is no longer ready.
func TestWALSyncFailureSticks(t *testing.T) {
	t.Parallel()
	s := open(t, Options{})
	errDisk := errors.New("disk gone")
	var flushes atomic.Int32
	s.w.sync.flush = func(f *os.File) error {
		if flushes.Add(1) == 1 {
			return errDisk // the first flush fails, later ones would not
		}
		return fdatasync(f)
	}
	wantUnavailable := func(what string, err error) {
		t.Helper()
		var unavailable *store.UnavailableError
		if !errors.As(err, &unavailable) || !errors.Is(err, errDisk) {
			t.Errorf("%s after a failed fsync: err = %v, want unavailable wrapping %v", what, err, errDisk)
		}
	}
	tk := task(1)
	_, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
	wantUnavailable("create", err)
	tk = task(2)
	_, _, err = s.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt})
	wantUnavailable("next create", err)
	wantUnavailable("ping", s.Ping(t.Context()))
}

// The syncer flushes the WAL of the file SQLite opened: through a symbolic
// link, that is the WAL beside the link's target.
func TestWALSyncThroughSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o750); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "real", "taskwire.db")
	if f, err := os.Create(target); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), link, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	create(t, s, task(1))
	if s.w.sync.path != target+"-wal" {
		t.Errorf("syncer flushes %s, want %s", s.w.sync.path, target+"-wal")
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

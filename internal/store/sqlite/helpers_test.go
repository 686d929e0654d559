package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// t0 is the epoch of these tests' clock.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// open opens a fresh store in t's temporary directory, closed at cleanup.
func open(t testing.TB, opts Options) *Store {
	t.Helper()
	s, _ := openAt(t, opts)
	return s
}

// openAt is open, and returns the path of the database file too, to open
// it again.
func openAt(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "taskwire.db")
	s, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, path
}

// reopen closes s and opens the database at path again, closed at
// cleanup.
func reopen(t *testing.T, s *Store, path string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// task returns pending task n of the default queue, created n ms after t0.
func task(n int) taskwire.Task {
	at := t0.Add(time.Duration(n) * time.Millisecond)
	return taskwire.Task{
		ID: fmt.Sprintf("t-%026d", n), Queue: taskwire.DefaultQueue, Text: fmt.Sprintf("task %d", n),
		Status: taskwire.StatusPending, Priority: taskwire.DefaultPriority,
		MaxAttempts: taskwire.DefaultMaxAttempts, LeaseMs: taskwire.DefaultLeaseMs,
		RunAt: at, CreatedAt: at, UpdatedAt: at,
	}
}

func create(t testing.TB, s *Store, tk taskwire.Task) {
	t.Helper()
	if _, _, err := s.CreateTask(t.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt}); err != nil {
		t.Fatal(err)
	}
}

func register(t testing.TB, s *Store, id string) {
	t.Helper()
	if err := s.RegisterWorker(t.Context(), store.RegisterWorkerParams{ID: id, Now: t0}); err != nil {
		t.Fatal(err)
	}
}

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskwire/taskwire/internal/store"
)

// While a Store has a database open, a second Open of it fails, through
// its path or a symbolic link to it, with an error that says another
// process uses it and names the lock file; the refused Open leaves the
// first Store working, and once that one is closed the database opens.
func TestOpenRefusesADatabaseInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "taskwire.db")
	first, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Close() })
	create(t, first, task(1))
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, link} {
		s, err := Open(t.Context(), p, Options{})
		if err == nil {
			s.Close()
			t.Fatalf("second Open of %s while the first is open: no error", p)
		}
		msg := err.Error()
		if !errors.Is(err, ErrInUse) || !strings.Contains(msg, "another taskwire process uses it") ||
			!strings.Contains(msg, p) || !strings.Contains(msg, file+"-lock") {
			t.Errorf("second Open of %s: %v, want ErrInUse naming %s and its lock file %s-lock", p, err, p, file)
		}
	}
	create(t, first, task(2))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), link, Options{})
	if err != nil {
		t.Fatalf("Open after the first Store closed: %v", err)
	}
	defer s.Close()
	if _, total, err := s.ListTasks(t.Context(), store.ListTasksParams{}); err != nil || total != 2 {
		t.Errorf("after reopening: %d tasks, %v; want 2", total, err)
	}
}

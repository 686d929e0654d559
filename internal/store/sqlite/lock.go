package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrInUse is the error Open wraps when another Store, normally in
// another taskwire process, has the database open. Two stores on one file
// would each keep their own counts of tasks and their own event ids, and
// neither's long polls would wake for the other's writes.
var ErrInUse = errors.New("another taskwire process uses it")

// errLocked is what lockFile returns when another open file holds the lock.
var errLocked = errors.New("locked")

// dbLock is the exclusive lock a Store holds on the lock file beside its
// database from Open to Close. It is an advisory lock of the operating
// system (flock, LockFileEx), held by the open file: a process that ends
// however it ends, kill -9 included, lets go of it, so it is never left
// stale. The file itself stays, empty: its content means nothing.
type dbLock struct {
	f *os.File
}

// lockDatabase takes the lock of the database file at path, or fails with
// ErrInUse when another open Store holds it, in this process or another.
func lockDatabase(path string) (*dbLock, error) {
	name := lockPath(path)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644) // the mode SQLite gives the database
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("sqlite: open %s: %w (it holds the lock on %s)", path, ErrInUse, name)
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", name, err)
	}
	return &dbLock{f: f}, nil
}

// release lets go of the lock.
func (l *dbLock) release() error {
	return errors.Join(unlockFile(l.f), l.f.Close())
}

// lockPath is the lock file of the database file at path: beside the file
// symbolic links lead to, as its WAL is, so that two paths to one database
// share one lock.
func lockPath(path string) string {
	if file, err := filepath.EvalSymlinks(path); err == nil {
		return file + "-lock"
	}
	// No database file yet: SQLite creates it in the directory.
	if dir, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		return filepath.Join(dir, filepath.Base(path)) + "-lock"
	}
	return path + "-lock"
}

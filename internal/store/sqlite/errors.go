package sqlite

import (
	"errors"
	"time"

	"modernc.org/sqlite" // also registers the pure Go "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/taskwire/taskwire/internal/store"
)

// unavailable maps the SQLite errors that say the database cannot be used
// now (busy, out of memory, I/O error, disk full, cannot open the file) to
// a *store.UnavailableError: the operation was rolled back and may be
// retried. Other errors are returned as they are.
func unavailable(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
		return unavailableFor(err)
	}
	return err
}

// unavailableFor is err as a *store.UnavailableError of SQLite.
func unavailableFor(err error) *store.UnavailableError {
	return &store.UnavailableError{Backend: "sqlite", RetryAfter: time.Second, Err: err}
}

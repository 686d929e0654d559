package sqlite

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
)

// TestEventIDsKeptAcrossMigration checks that a database made before the
// writer gave event seqs itself (AUTOINCREMENT, migration 0009) goes on
// after the newest id it issued, even when its log was trimmed empty.
func TestEventIDsKeptAcrossMigration(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "taskwire.db")
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT"}
	for _, m := range ms {
		if m.version < 9 {
			stmts = append(stmts, m.sql, "INSERT INTO schema_migrations VALUES ("+strconv.Itoa(m.version)+", '"+m.name+"')")
		}
	}
	stmts = append(stmts,
		"INSERT INTO events (type, payload, metadata, ts) VALUES ('task.created', '{}', '{}', 0), ('task.created', '{}', '{}', 0)",
		"DELETE FROM events")
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	create(t, s, task(1))
	if got := seqOf(t, lastEventID(t, s)); got != 3 {
		t.Errorf("first event id after the migration = %d, want 3", got)
	}
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// appendEvent adds ev to the event log in the transaction of the change
// it reports: it is written with the batch's other events when the batch
// commits (flushEvents), and dropped with its op when the op fails. The
// log assigns its ID.
func (t *writeTx) appendEvent(ev taskwire.Event) {
	t.events = append(t.events, ev)
}

// eventRowsPerInsert bounds the rows of one multi-row INSERT of events
// (5 parameters each, far below SQLite's limit on parameters).
const eventRowsPerInsert = 100

// flushEvents writes the events the batch's ops appended, in their order,
// with multi-row INSERTs: one statement per hundred events costs much less
// than one per event.
func (t *writeTx) flushEvents() error {
	for evs := t.events; len(evs) > 0; {
		n := min(len(evs), eventRowsPerInsert)
		args := make([]any, 0, 6*n)
		for _, ev := range evs[:n] {
			t.lastEvent++
			args = append(args, t.lastEvent, string(ev.Type), nullString(ev.TaskID), string(ev.Payload), string(ev.Metadata), ev.Timestamp)
		}
		query := "INSERT INTO events (seq, type, task_id, payload, metadata, ts) VALUES (?, ?, ?, ?, ?, ?)" +
			strings.Repeat(", (?, ?, ?, ?, ?, ?)", n-1)
		if _, err := t.exec(query, args...); err != nil {
			return fmt.Errorf("append %d events: %w", n, err)
		}
		evs = evs[n:]
	}
	return nil
}

// ReadEvents returns up to limit events after the event with ID after
// ("" or "0" for the oldest), oldest first, from a read connection. An event's ID
// is the decimal form of its seq; an after that is not one, or is beyond
// the last seq issued, is an error.
func (s *Store) ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("read events: limit %d, want at least 1", limit)
	}
	var from int64
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != after {
			return nil, fmt.Errorf("read events after %q: not an event id: %w", after, store.ErrNotFound)
		}
		from = n
	}
	var evs []taskwire.Event
	err := s.view(ctx, func(tx *readTx) error {
		issued, err := tx.issued(from, s.w.lastEvent.Load())
		if err != nil {
			return err
		}
		if !issued {
			return fmt.Errorf("event id %s was never issued: %w", after, store.ErrNotFound)
		}
		evs, err = tx.events("SELECT "+eventColumns+" FROM events WHERE seq > ? ORDER BY seq LIMIT ?", from, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read events after %q: %w", after, err)
	}
	return evs, nil
}

// issued reports whether event seq was issued, as tx sees the log. The
// writer's last seq (recorded) answers without a query; a seq beyond it
// is looked up, since a reader may see a commit before the writer has
// recorded its events.
func (t *readTx) issued(seq, recorded int64) (bool, error) {
	if seq <= recorded {
		return true, nil
	}
	var last int64
	err := t.queryRow(issuedQuery).Scan(&last)
	return seq <= last, err
}

// LastEventID returns the ID of the newest event appended, "" when none
// ever was, as the writer last committed it: the event hub moves its
// cursor there while nobody subscribes, instead of reading every event.
func (s *Store) LastEventID(context.Context) (string, error) {
	if issued := s.w.lastEvent.Load(); issued > 0 {
		return strconv.FormatInt(issued, 10), nil
	}
	return "", nil
}

// IssuedBetween reports whether any event was issued with an ID strictly
// between after and next (event IDs, "" before the first): false when the
// IDs between are all in runs skipEventIDs skipped, so that a reader who
// sees the log jump over them knows that nothing is missing. An after
// inside such a run is an event a power cut took back after a reader saw
// it: that reader has seen what is no longer so, which counts as events
// missing (true).
func (s *Store) IssuedBetween(ctx context.Context, after, next string) (bool, error) {
	a, err1 := parseSeq(after)
	n, err2 := parseSeq(next)
	if err := errors.Join(err1, err2); err != nil {
		return false, fmt.Errorf("issued between: %w", err)
	}
	if n <= a+1 {
		return false, nil
	}
	var skipped int64
	var takenBack bool
	err := s.view(ctx, func(tx *readTx) error {
		return tx.queryRow(`SELECT
			(SELECT coalesce(sum(min(after + size, ?2) - max(after + 1, ?1) + 1), 0)
				FROM event_gaps WHERE after + 1 <= ?2 AND after + size >= ?1),
			EXISTS (SELECT 1 FROM event_gaps WHERE after < ?3 AND ?3 < after + size)`,
			a+1, n-1, a).Scan(&skipped, &takenBack)
	})
	if err != nil {
		return false, fmt.Errorf("issued between %s and %s: %w", after, next, err)
	}
	return takenBack || skipped < n-1-a, nil
}

// parseSeq returns the seq an event ID stands for, 0 for "".
func parseSeq(id string) (int64, error) {
	if id == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not an event id: %q", id)
	}
	return n, nil
}

// leftWAL reports whether the database at path has a WAL file with
// frames in it before it is opened: what a process that did not close it
// leaves behind (a clean close checkpoints the WAL and deletes it).
func leftWAL(path string) bool {
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	st, err := os.Stat(file + "-wal")
	return err == nil && st.Size() > 0
}

// eventIDGap is how far the event ids jump after a process stopped without
// closing the database: more events than the commits a power cut can take
// back (those waiting for the syncer's fsync) ever hold.
const eventIDGap = 10_000_000

// skipEventIDs moves the event ids past eventIDGap, at synchronous=FULL,
// before any event is appended. A power cut may have taken back commits
// whose events subscribers had already read (see walSyncer): their ids
// are then never issued again, and a reader resuming after one of them
// goes on with the next event appended.
//
// The gap is recorded in event_gaps, so that trimming the log to its
// newest events counts the events kept rather than the seqs they span.
func skipEventIDs(ctx context.Context, conn *sql.Conn) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("skip event ids: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	_, err = tx.ExecContext(ctx, `INSERT INTO event_gaps (after, size) SELECT (`+issuedQuery+`), ?`, eventIDGap)
	if err == nil {
		_, err = tx.ExecContext(ctx, "UPDATE event_ids SET issued = ("+issuedQuery+") + ?", eventIDGap)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return fmt.Errorf("skip event ids: %w", err)
	}
	return nil
}

// issuedQuery reads the newest event seq ever issued, 0 when none was:
// the log's newest, or the one event_ids keeps when the log no longer
// holds it (trimmed, or ids skipped).
const issuedQuery = "SELECT max((SELECT issued FROM event_ids), coalesce((SELECT max(seq) FROM events), 0))"

// lastEventSeq reads the seq of the newest event ever issued, 0 when none
// was.
func lastEventSeq(ctx context.Context, conn *sql.Conn) (int64, error) {
	var seq int64
	err := conn.QueryRowContext(ctx, issuedQuery).Scan(&seq)
	return seq, err
}

// TaskEvents returns the oldest limit events of task taskID, oldest
// first, from a read connection; the index events_task finds them without
// reading the rest of the log.
func (s *Store) TaskEvents(ctx context.Context, taskID string, limit int) ([]taskwire.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("task events: limit %d, want at least 1", limit)
	}
	evs := []taskwire.Event{}
	err := s.view(ctx, func(tx *readTx) error {
		page, err := tx.events("SELECT "+eventColumns+" FROM events WHERE task_id = ? ORDER BY seq LIMIT ?", taskID, limit)
		evs = append(evs, page...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("task events of %s: %w", taskID, err)
	}
	return evs, nil
}

// eventColumns are the columns of an event, in the order events scans them.
const eventColumns = "seq, type, task_id, payload, metadata, ts"

// events runs query, which selects eventColumns, and returns the events it
// finds.
func (t *readTx) events(query string, args ...any) ([]taskwire.Event, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var evs []taskwire.Event
	for rows.Next() {
		var (
			e                 taskwire.Event
			seq               int64
			typ               string
			taskID            sql.NullString
			payload, metadata string
		)
		if err := rows.Scan(&seq, &typ, &taskID, &payload, &metadata, &e.Timestamp); err != nil {
			return nil, err
		}
		e.ID, e.Type, e.TaskID = strconv.FormatInt(seq, 10), taskwire.EventType(typ), taskID.String
		e.Payload, e.Metadata = []byte(payload), []byte(metadata)
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// EventsChanged returns a channel that the writer closes after the next
// commit that appended events.
func (s *Store) EventsChanged() <-chan struct{} { return s.w.changed.Wait() }

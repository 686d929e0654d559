package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
		args := make([]any, 0, 5*n)
		for _, ev := range evs[:n] {
			args = append(args, string(ev.Type), nullString(ev.TaskID), string(ev.Payload), string(ev.Metadata), ev.Timestamp)
		}
		query := "INSERT INTO events (type, task_id, payload, metadata, ts) VALUES (?, ?, ?, ?, ?)" +
			strings.Repeat(", (?, ?, ?, ?, ?)", n-1)
		if _, err := t.exec(query, args...); err != nil {
			return fmt.Errorf("append %d events: %w", n, err)
		}
		evs = evs[n:]
	}
	return nil
}

// ReadEvents returns up to limit events after the event with ID after
// ("" for the oldest), oldest first, from a read connection. An event's ID
// is the decimal form of its seq; an after that is not one, or is beyond
// the last seq issued, is an error.
func (s *Store) ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("read events: limit %d, want at least 1", limit)
	}
	var from int64
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 1 || strconv.FormatInt(n, 10) != after {
			return nil, fmt.Errorf("read events after %q: not an event id: %w", after, store.ErrNotFound)
		}
		from = n
	}
	var evs []taskwire.Event
	err := s.view(ctx, func(tx *readTx) error {
		if from > 0 {
			var issued int64
			err := tx.queryRow("SELECT seq FROM sqlite_sequence WHERE name = 'events'").Scan(&issued)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if from > issued {
				return fmt.Errorf("event id %s was never issued: %w", after, store.ErrNotFound)
			}
		}
		rows, err := tx.query(`SELECT seq, type, task_id, payload, metadata, ts FROM events
			WHERE seq > ? ORDER BY seq LIMIT ?`, from, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e                 taskwire.Event
				seq               int64
				typ               string
				taskID            sql.NullString
				payload, metadata string
			)
			if err := rows.Scan(&seq, &typ, &taskID, &payload, &metadata, &e.Timestamp); err != nil {
				return err
			}
			e.ID, e.Type, e.TaskID = strconv.FormatInt(seq, 10), taskwire.EventType(typ), taskID.String
			e.Payload, e.Metadata = []byte(payload), []byte(metadata)
			evs = append(evs, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read events after %q: %w", after, err)
	}
	return evs, nil
}

// EventsChanged returns a channel that the writer closes after the next
// commit that appended events.
func (s *Store) EventsChanged() <-chan struct{} { return s.w.changed.Wait() }

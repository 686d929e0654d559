package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// appendEvent writes ev into the event log, in the transaction of the
// change it reports; the log assigns its ID.
func (t *writeTx) appendEvent(ev taskwire.Event) error {
	if _, err := t.exec("INSERT INTO events (type, task_id, payload, metadata, ts) VALUES (?, ?, ?, ?, ?)",
		string(ev.Type), nullString(ev.TaskID), string(ev.Payload), string(ev.Metadata), ev.Timestamp); err != nil {
		return fmt.Errorf("append event %s: %w", ev.Type, err)
	}
	t.appended++
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

package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// taskColumns are the columns scanTask reads, in its order.
const taskColumns = `seq, id, queue, text, status, priority, metadata, assigned_to, attempt,
	max_attempts, lease_ms, run_at, lease_expires_at, error, result_size, result_sum,
	completed_by, created_at, updated_at, completed_at, duration_ms`

// taskRow is a task as stored: the wire task, without its result, and
// what only the store needs.
type taskRow struct {
	*taskwire.Task
	seq int64
	// sum is the SHA-256 of the stored result, nil while there is none.
	sum []byte
	// completedBy is the worker that finalized the task, "" for an admin.
	completedBy string
	// stored is the status the row has in the table: saveTask counts a
	// change from it.
	stored taskwire.Status
}

type scanner interface{ Scan(dest ...any) error }

// scanTask reads the taskColumns of one row, then extra.
func scanTask(sc scanner, extra ...any) (*taskRow, error) {
	var (
		r                                          = taskRow{Task: &taskwire.Task{}}
		t                                          = r.Task
		status                                     string
		metadata, assignedTo, errText, completedBy sql.NullString
		runAt, leaseExpires, completedAt, duration sql.NullInt64
		createdAt, updatedAt                       int64
	)
	dest := []any{&r.seq, &t.ID, &t.Queue, &t.Text, &status, &t.Priority, &metadata, &assignedTo,
		&t.Attempt, &t.MaxAttempts, &t.LeaseMs, &runAt, &leaseExpires, &errText, &t.ResultSize,
		&r.sum, &completedBy, &createdAt, &updatedAt, &completedAt, &duration}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	t.Status = taskwire.Status(status)
	r.stored = t.Status
	if metadata.Valid {
		t.Metadata = json.RawMessage(metadata.String)
	}
	t.AssignedTo, t.Error, r.completedBy = assignedTo.String, errText.String, completedBy.String
	t.RunAt, t.LeaseExpiresAt, t.CompletedAt = fromMs(runAt), fromMs(leaseExpires), fromMs(completedAt)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(updatedAt).UTC()
	t.DurationMs = duration.Int64
	return &r, nil
}

// getTask reads one task without its result.
func getTask(q querier, id string) (*taskRow, error) {
	r, err := scanTask(q.queryRow("SELECT "+taskColumns+" FROM tasks WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &store.TaskNotFoundError{ID: id}
	}
	return r, err
}

// conflict reports that r's state does not allow an operation.
func conflict(r *taskRow, format string, args ...any) *store.ConflictError {
	return store.Conflict(r.Task, format, args...)
}

// saveTask writes back every column of r that an operation may change, and
// counts its change of status.
func saveTask(tx *writeTx, r *taskRow) error {
	if r.Status != r.stored {
		tx.count(r.Queue, r.stored, -1)
		tx.count(r.Queue, r.Status, 1)
		r.stored = r.Status
	}
	_, err := tx.exec(`UPDATE tasks SET text = ?, status = ?, priority = ?, metadata = ?,
		assigned_to = ?, lease_expires_at = ?, error = ?, result_size = ?, result_sum = ?,
		completed_by = ?, updated_at = ?, completed_at = ?, duration_ms = ?
		WHERE seq = ?`,
		r.Text, string(r.Status), r.Priority, nullJSON(r.Metadata),
		nullString(r.AssignedTo), ms(r.LeaseExpiresAt), nullString(r.Error), r.ResultSize, r.sum,
		nullString(r.completedBy), ms(r.UpdatedAt), ms(r.CompletedAt), durationOrNil(r.Task),
		r.seq)
	return err
}

func durationOrNil(t *taskwire.Task) any {
	if t.CompletedAt.IsZero() {
		return nil
	}
	return t.DurationMs
}

// requeue makes r pending and unassigned, without a lease; a final task
// loses its outcome too (a re-run). The caller deletes its result bytes.
func (r *taskRow) requeue() {
	r.Status, r.AssignedTo, r.LeaseExpiresAt = taskwire.StatusPending, "", time.Time{}
	r.Error, r.ResultSize, r.sum, r.completedBy = "", 0, nil, ""
	r.CompletedAt, r.DurationMs = time.Time{}, 0
}

// renewLease makes r's lease run LeaseMs from now.
func (r *taskRow) renewLease(now time.Time) {
	r.LeaseExpiresAt = now.Add(time.Duration(r.LeaseMs) * time.Millisecond)
}

// truncMs is t in UTC at millisecond precision, as the store keeps it.
func truncMs(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// ms is t in unix milliseconds, or NULL for the zero time.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// fromMs is the time of unix milliseconds in UTC, zero for NULL.
func fromMs(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// nullString is s, or NULL when empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullJSON is m as text, or NULL when empty or JSON null.
func nullJSON(m json.RawMessage) any {
	if len(m) == 0 || string(m) == "null" {
		return nil
	}
	return string(m)
}

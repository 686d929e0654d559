package redispg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskwire/taskwire"
)

// taskColumns are the columns of a task row, in the order of taskArgs and
// scanTaskRow.
const taskColumns = `id, queue, text, status, priority, metadata, assigned_to, attempt,
	max_attempts, lease_ms, run_at, lease_expires_at, error, result_size, result_sum,
	result_attempt, completed_by, created_at, updated_at, completed_at, duration_ms, version`

// upsertTask writes a task row unless PostgreSQL holds a newer version of
// it, or its tombstone: writes may arrive in any order, the newest wins.
const upsertTask = `INSERT INTO tasks (` + taskColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
	` + newerWins

// newerWins ends the writes of task rows: a row is replaced only by a
// newer version, never once deleted.
const newerWins = `ON CONFLICT (id) DO UPDATE SET queue = excluded.queue, text = excluded.text,
		status = excluded.status, priority = excluded.priority, metadata = excluded.metadata,
		assigned_to = excluded.assigned_to, attempt = excluded.attempt,
		max_attempts = excluded.max_attempts, lease_ms = excluded.lease_ms, run_at = excluded.run_at,
		lease_expires_at = excluded.lease_expires_at, error = excluded.error,
		result_size = excluded.result_size, result_sum = excluded.result_sum,
		result_attempt = excluded.result_attempt, completed_by = excluded.completed_by,
		created_at = excluded.created_at, updated_at = excluded.updated_at,
		completed_at = excluded.completed_at, duration_ms = excluded.duration_ms,
		version = excluded.version, written_at = now()
	WHERE tasks.version < excluded.version AND NOT tasks.deleted`

// taskArgs are the values of s's row.
func taskArgs(s *taskState) []any {
	t := s.Task
	var meta, dur, ratt any
	if len(t.Metadata) > 0 && string(t.Metadata) != "null" {
		meta = string(t.Metadata)
	}
	if !t.CompletedAt.IsZero() {
		dur, ratt = t.DurationMs, s.resultAttempt
	}
	return []any{t.ID, t.Queue, t.Text, string(t.Status), t.Priority, meta, nullStr(t.AssignedTo),
		t.Attempt, t.MaxAttempts, t.LeaseMs, nullMs(t.RunAt), nullMs(t.LeaseExpiresAt), nullStr(t.Error),
		t.ResultSize, nullStr(s.sum), ratt, nullStr(s.completedBy), t.CreatedAt.UnixMilli(),
		t.UpdatedAt.UnixMilli(), nullMs(t.CompletedAt), dur, s.ver}
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullMs(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// queueTaskWrites adds to b the writes of the tasks saved and deleted.
func queueTaskWrites(b *pgx.Batch, saved []*taskState, deleted []string) {
	for _, s := range saved {
		b.Queue(upsertTask, taskArgs(s)...)
	}
	for _, id := range deleted {
		// Waits for the stagings of its results in progress (their key-share
		// lock), so that the deletes below see their rows.
		b.Queue("SELECT FROM tasks WHERE id = $1 FOR UPDATE", id)
		b.Queue(`UPDATE tasks SET deleted = true, text = '', metadata = NULL, error = NULL,
			result_size = 0, result_sum = NULL, result_attempt = NULL WHERE id = $1`, id)
		b.Queue("DELETE FROM idempotency_keys WHERE task_id = $1", id)
		b.Queue("DELETE FROM staged_results WHERE task_id = $1", id)
		b.Queue("DELETE FROM results WHERE task_id = $1", id)
	}
}

type rowScanner interface{ Scan(dest ...any) error }

// scanTaskRow reads the taskColumns of one row.
func scanTaskRow(sc rowScanner) (*taskState, error) {
	var (
		t                           taskwire.Task
		s                           = taskState{Task: &t}
		status                      string
		meta, asg, errText, sum, by pgtype.Text
		runAt, lease, done, dur     pgtype.Int8
		ratt                        pgtype.Int4
		createdAt, updatedAt        int64
	)
	if err := sc.Scan(&t.ID, &t.Queue, &t.Text, &status, &t.Priority, &meta, &asg, &t.Attempt,
		&t.MaxAttempts, &t.LeaseMs, &runAt, &lease, &errText, &t.ResultSize, &sum, &ratt, &by,
		&createdAt, &updatedAt, &done, &dur, &s.ver); err != nil {
		return nil, err
	}
	t.Status = taskwire.Status(status)
	if meta.Valid {
		t.Metadata = json.RawMessage(meta.String)
	}
	t.AssignedTo, t.Error, s.sum, s.completedBy = asg.String, errText.String, sum.String, by.String
	t.RunAt, t.LeaseExpiresAt, t.CompletedAt = fromMs(runAt), fromMs(lease), fromMs(done)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(updatedAt).UTC()
	t.DurationMs, s.resultAttempt = dur.Int64, int(ratt.Int32)
	return &s, nil
}

func fromMs(v pgtype.Int8) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// pgTask reads task id from PostgreSQL; nil when there is none.
func (s *Store) pgTask(ctx context.Context, id string) (*taskState, error) {
	t, err := scanTaskRow(s.pg.QueryRow(ctx, "SELECT "+taskColumns+" FROM tasks WHERE id = $1 AND NOT deleted", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read task row: %w", s.pgErr(err))
	}
	return t, nil
}

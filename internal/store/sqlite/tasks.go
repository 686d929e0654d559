package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// CreateTask inserts p.Task as a pending task, or returns the task that
// p.IdempotencyKey created within the window. The writer runs creates one
// after another, so two racing creates with one key make one task. Each
// keyed create also forgets a few keys older than its window, so the keys
// kept stay about those of one window.
func (s *Store) CreateTask(ctx context.Context, p store.CreateTaskParams) (*taskwire.Task, bool, error) {
	t := store.PendingTask(p.Task)
	notBefore := p.Now.Add(-p.IdempotencyWindow).UnixMilli()
	// The event is encoded here, outside the writer, which runs one
	// operation at a time.
	ev := store.TaskCreatedEvent(&t, p.By)

	var task *taskwire.Task
	created := false
	err := s.w.do(ctx, func(tx *writeTx) error {
		if p.IdempotencyKey != "" {
			var id string
			var at int64
			err := tx.queryRow("SELECT task_id, created_at FROM idempotency_keys WHERE key = ?",
				p.IdempotencyKey).Scan(&id, &at)
			if err == nil && at > notBefore {
				r, err := getTask(tx, id)
				if err != nil {
					return err
				}
				task = r.Task
				return nil
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if _, err := tx.exec(`DELETE FROM idempotency_keys WHERE key IN
				(SELECT key FROM idempotency_keys WHERE created_at <= ? LIMIT 4)`, notBefore); err != nil {
				return err
			}
		}
		if _, err := tx.exec(`INSERT INTO tasks (id, queue, text, status, priority, metadata,
			max_attempts, lease_ms, run_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Queue, t.Text, string(t.Status), t.Priority, nullJSON(t.Metadata),
			t.MaxAttempts, t.LeaseMs, ms(t.RunAt), ms(t.CreatedAt), ms(t.UpdatedAt)); err != nil {
			return err
		}
		tx.count(t.Queue, t.Status, 1)
		if p.IdempotencyKey != "" {
			if _, err := tx.exec(`INSERT INTO idempotency_keys (key, task_id, created_at) VALUES (?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, created_at = excluded.created_at`,
				p.IdempotencyKey, t.ID, ms(t.CreatedAt)); err != nil {
				return err
			}
		}
		tx.appendEvent(ev)
		task, created = &t, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("create task %s: %w", t.ID, err)
	}
	return task, created, nil
}

// GetTask returns a task with its whole result.
func (s *Store) GetTask(ctx context.Context, id string) (*taskwire.Task, error) {
	var task *taskwire.Task
	err := s.view(ctx, func(tx *readTx) error {
		r, err := getTask(tx, id)
		if err != nil {
			return err
		}
		if r.Result, err = readResult(tx, id, r.ResultSize); err != nil {
			return err
		}
		task = r.Task
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	return task, nil
}

// UpdateTask changes the given fields of a task by the rules of
// store.UpdateTaskParams.
func (s *Store) UpdateTask(ctx context.Context, p store.UpdateTaskParams) (*taskwire.Task, error) {
	now := truncMs(p.Now)
	var task *taskwire.Task
	err := s.w.do(ctx, func(tx *writeTx) error {
		r, err := getTask(tx, p.ID)
		if err != nil {
			return err
		}
		before := *r.Task
		if p.Attempt != nil && *p.Attempt != r.Attempt {
			return conflict(r, "stale attempt %d, current %d", *p.Attempt, r.Attempt)
		}
		if p.WorkerID != "" {
			if err := store.HeldBy(r.Task, p.WorkerID); err != nil {
				return err
			}
			r.renewLease(now)
			tx.touchWorker(p.WorkerID, now)
		}
		u := p.Updates
		if u.Text != nil {
			r.Text = *u.Text
		}
		if u.Priority != nil {
			r.Priority = *u.Priority
		}
		if r.Metadata, err = store.MergeMetadata(r.Metadata, u.Metadata, taskwire.MaxMetadataBytes); err != nil {
			return err
		}
		r.UpdatedAt = now
		if u.Status != nil {
			if err := changeStatus(tx, r, *u.Status, p.WorkerID, now); err != nil {
				return err
			}
		}
		if err := saveTask(tx, r); err != nil {
			return err
		}
		tx.appendEvent(store.TaskUpdatedEvent(r.Task, p.By, store.ChangedFields(&before, r.Task), now))
		if u.Status != nil {
			if ev, ok := store.StatusChangeEvent(&before, r.Task, *u.Status, p, now); ok {
				tx.appendEvent(ev)
			}
		}
		task = r.Task
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update task %s: %w", p.ID, err)
	}
	return task, nil
}

// changeStatus applies a status change of task.update to r: pending
// requeues it (a re-run when it was final), completed and failed finalize
// it with no result, in_progress only keeps an in_progress task so.
func changeStatus(tx *writeTx, r *taskRow, to taskwire.Status, by string, now time.Time) error {
	switch to {
	case taskwire.StatusPending:
		if r.Status.Final() {
			if err := deleteResult(tx, r.ID); err != nil {
				return err
			}
		}
		r.requeue()
		return nil
	case taskwire.StatusInProgress:
		if r.Status != taskwire.StatusInProgress {
			return conflict(r, "task is %s: only a claim starts it", r.Status)
		}
		return nil
	case taskwire.StatusCompleted, taskwire.StatusFailed:
		if r.Status.Final() {
			return conflict(r, "task is %s", r.Status)
		}
		return finalize(tx, r, to, "", nil, resultSum(nil), by, now)
	}
	return fmt.Errorf("status %q: not a task status", to)
}

// AssignTask reserves a pending task for a registered worker.
func (s *Store) AssignTask(ctx context.Context, p store.AssignTaskParams) (*taskwire.Task, error) {
	now := truncMs(p.Now)
	var task *taskwire.Task
	err := s.w.do(ctx, func(tx *writeTx) error {
		r, err := getTask(tx, p.TaskID)
		if err != nil {
			return err
		}
		w, err := getWorker(tx, p.WorkerID)
		if err != nil {
			return err
		}
		if w.Status != taskwire.WorkerOnline {
			return &store.WorkerNotFoundError{ID: p.WorkerID}
		}
		again, err := store.CheckAssign(r.Task, p.WorkerID)
		if err != nil {
			return err
		}
		if again {
			task = r.Task // already reserved for this worker
			return nil
		}
		r.AssignedTo, r.UpdatedAt = p.WorkerID, now
		if err := saveTask(tx, r); err != nil {
			return err
		}
		task = r.Task
		tx.appendEvent(store.TaskAssignedEvent(r.ID, p.WorkerID, p.By, now))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("assign task %s to %s: %w", p.TaskID, p.WorkerID, err)
	}
	return task, nil
}

// UnassignTask clears a task's assignment; an in_progress task goes back
// to pending. A pending task without assignment is left unchanged.
func (s *Store) UnassignTask(ctx context.Context, p store.UnassignTaskParams) (string, *taskwire.Task, error) {
	now := truncMs(p.Now)
	var previous string
	var task *taskwire.Task
	err := s.w.do(ctx, func(tx *writeTx) error {
		r, err := getTask(tx, p.TaskID)
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return conflict(r, "task is %s", r.Status)
		}
		previous, task = r.AssignedTo, r.Task
		if previous == "" {
			return nil
		}
		r.requeue()
		r.UpdatedAt = now
		if err := saveTask(tx, r); err != nil {
			return err
		}
		tx.appendEvent(store.TaskUnassignedEvent(r.ID, previous, p.By, now))
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("unassign task %s: %w", p.TaskID, err)
	}
	return previous, task, nil
}

// DeleteTask removes a task, its result and its idempotency key.
func (s *Store) DeleteTask(ctx context.Context, p store.DeleteTaskParams) error {
	err := s.w.do(ctx, func(tx *writeTx) error {
		r, err := getTask(tx, p.ID)
		if err != nil {
			return err
		}
		if err := deleteResult(tx, r.ID); err != nil {
			return err
		}
		if _, err := tx.exec("DELETE FROM idempotency_keys WHERE task_id = ?", r.ID); err != nil {
			return err
		}
		if _, err = tx.exec("DELETE FROM tasks WHERE seq = ?", r.seq); err != nil {
			return err
		}
		tx.count(r.Queue, r.stored, -1)
		tx.appendEvent(store.TaskDeletedEvent(r.ID, p.By, truncMs(p.Now)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete task %s: %w", p.ID, err)
	}
	return nil
}

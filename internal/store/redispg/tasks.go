package redispg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// CreateTask inserts the task row in PostgreSQL (with its idempotency
// key, which PostgreSQL keeps so that it outlives a loss of Redis), then
// enqueues the task in Redis with its event. Two racing creates with one
// key make one task: the second waits on the key's row and finds it.
func (s *Store) CreateTask(ctx context.Context, p store.CreateTaskParams) (*taskwire.Task, bool, error) {
	t := store.PendingTask(p.Task)
	st := &taskState{Task: &t, ver: 1}
	existing, err := s.insertTask(ctx, st, p)
	if err != nil {
		if p.IdempotencyKey == "" {
			s.fenceUnwrittenCreate(ctx, t.ID)
		}
		return nil, false, fmt.Errorf("create task %s: %w", t.ID, err)
	}
	if existing != "" {
		prev, err := s.readTask(ctx, existing)
		if errors.Is(err, store.ErrNotFound) {
			// The key's create settled as not made (settledRow): its key
			// went with it, and this create takes it.
			existing, err = s.insertTask(ctx, st, p)
			if err == nil && existing != "" {
				prev, err = s.readTask(ctx, existing)
			}
		}
		if err != nil {
			return nil, false, fmt.Errorf("create task %s: idempotency key of %s: %w", t.ID, existing, err)
		}
		if prev != nil {
			return prev.Task, false, nil
		}
	}
	x := s.txn()
	x.saveTask(nil, st, truncMs(p.Now))
	x.check(s.k.createFence(t.ID), 0)
	// Restored from its row by another call and deleted since: not made.
	x.check(s.k.deletion(t.ID), 0)
	x.Outbox = nil // PostgreSQL holds this very version already
	x.emit(store.TaskCreatedEvent(&t, p.By))
	if err := s.bounded(ctx, func(ctx context.Context) error { return s.apply(ctx, x) }); err != nil {
		if s.settleFailedCreate(ctx, t.ID) {
			return &t, true, nil
		}
		return nil, false, fmt.Errorf("create task %s: %w", t.ID, err)
	}
	return &t, true, nil
}

// settleFailedCreate decides the outcome of the create of task id whose
// transition answered an error: it may have committed all the same (its
// reply lost, or a resend of it found the task). It reports whether the
// task was made, and takes the row and key back when it was not. The
// create is marked unsettled first, so that no reconciler restores the
// task meanwhile; when Redis does not answer, the mark stays until Redis
// answers whether the task was made (settledRow).
func (s *Store) settleFailedCreate(ctx context.Context, id string) bool {
	ctx = context.WithoutCancel(ctx)
	marked := s.bounded(ctx, func(ctx context.Context) error { return s.markUnsettled(ctx, id) }) == nil
	committed, err := boundedValue(ctx, s, func(ctx context.Context) (bool, error) { return s.settleCreate(ctx, id) })
	switch {
	case err != nil:
		if !marked {
			s.log.Warn("create of unknown outcome kept unmarked; the reconciler will enqueue it", "task", id, "err", err)
		}
		return false
	case committed:
		if !marked {
			return true
		}
		err := s.bounded(ctx, func(ctx context.Context) error { return s.unmarkUnsettled(ctx, id) })
		if err != nil {
			// Answered as failed, though made: the mark must not let the
			// reconciler take back a task acknowledged as made.
			s.log.Warn("create made but answered as failed", "task", id, "err", err)
		}
		return err == nil
	default:
		s.forget(ctx, id)
		return false
	}
}

// fenceUnwrittenCreate fences off the create of task id, without an
// idempotency key, whose row PostgreSQL did not acknowledge. Its group
// commit, sent whole, may still be on its way (a network that stalled,
// then recovers) and commit the row after the caller was answered an
// error; whatever meets the row then (the reconciler, a read or change of
// the task) finds the fence and takes the row back (fencedRow), so that
// the create makes no task. A keyed create is not fenced: its transaction
// waits for each statement, and a row it committed all the same is what
// the key hands to the caller's retry, or already handed to a concurrent
// create with the same key.
func (s *Store) fenceUnwrittenCreate(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	if _, err := boundedValue(ctx, s, func(ctx context.Context) (bool, error) { return s.settleCreate(ctx, id) }); err != nil {
		s.log.Warn("create not written kept unfenced; a late commit of its row would make the task", "task", id, "err", err)
	}
}

// fencedRow reports whether the row of task t, which Redis does not hold,
// is that of a create fenced off, and takes the row back (forget) when it
// is.
func (s *Store) fencedRow(ctx context.Context, t *taskState) (bool, error) {
	if !unchangedCreate(t) {
		return false, nil
	}
	n, err := s.rdb.Exists(ctx, s.k.createFence(t.ID)).Result()
	if err != nil {
		return false, s.redisErr(err)
	}
	if n == 0 {
		return false, nil
	}
	s.forget(ctx, t.ID)
	return true, nil
}

// unchangedCreate reports whether t is as its create wrote it: a row
// changed since shows that Redis held the task, so its create was made.
func unchangedCreate(t *taskState) bool {
	return t.ver == 1 && t.Status == taskwire.StatusPending
}

// createFenceTTL is how long a settled create's fence lasts: far longer
// than a transition stays in flight.
const createFenceTTL = time.Hour

// settleCreate reports whether the transition of the create of task id
// committed; when it did not, it fences it off, so that it never will.
func (s *Store) settleCreate(ctx context.Context, id string) (bool, error) {
	n, err := s.scripts.settle.Run(ctx, s.rdb, []string{s.k.task(id), s.k.createFence(id)},
		createFenceTTL.Milliseconds()).Int64()
	if err != nil {
		return false, s.redisErr(err)
	}
	return n == 1, nil
}

// insertTask commits the row of a new task and its idempotency key. When
// the key names a task created within the window, it writes nothing and
// returns that task's id.
func (s *Store) insertTask(ctx context.Context, st *taskState, p store.CreateTaskParams) (string, error) {
	if p.IdempotencyKey == "" {
		return "", s.pgErr(s.group.writeRows(ctx, st))
	}
	existing := ""
	err := s.bounded(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pg, func(tx pgx.Tx) error {
			notBefore := p.Now.Add(-p.IdempotencyWindow).UnixMilli()
			var id string
			err := tx.QueryRow(ctx, `INSERT INTO idempotency_keys (key, task_id, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, created_at = excluded.created_at
			WHERE idempotency_keys.created_at <= $4 RETURNING task_id`,
				p.IdempotencyKey, st.ID, st.CreatedAt.UnixMilli(), notBefore).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return tx.QueryRow(ctx, "SELECT task_id FROM idempotency_keys WHERE key = $1",
					p.IdempotencyKey).Scan(&existing)
			}
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, upsertTask, taskArgs(st)...)
			return err
		})
	})
	if err != nil {
		return "", s.pgErr(err)
	}
	return existing, nil
}

// forget deletes the row of a create that Redis refused, or fenced off.
func (s *Store) forget(ctx context.Context, id string) {
	b := &pgx.Batch{}
	b.Queue("DELETE FROM idempotency_keys WHERE task_id = $1", id)
	b.Queue("DELETE FROM tasks WHERE id = $1 AND version = 1", id)
	b.Queue("DELETE FROM unsettled_creates WHERE task_id = $1", id)
	if err := s.bounded(ctx, func(ctx context.Context) error { return s.pg.SendBatch(ctx, b).Close() }); err != nil {
		s.log.Warn("take back unacknowledged create; the reconciler will enqueue it", "task", id, "err", err)
	}
}

// redisTask reads task id from Redis; nil when Redis does not hold it.
func (s *Store) redisTask(ctx context.Context, id string) (*taskState, error) {
	h, err := s.readHash(ctx, s.k.task(id))
	if err != nil {
		return nil, err
	}
	return taskFromHash(h)
}

// getTasks reads the tasks ids from Redis in one round trip, leaving out
// those it does not hold.
func (s *Store) getTasks(ctx context.Context, ids []string) ([]*taskState, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.k.task(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.redisErr(err)
	}
	out := make([]*taskState, 0, len(ids))
	for _, c := range cmds {
		t, err := taskFromHash(c.Val())
		if err != nil {
			return nil, err
		}
		if t != nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// readTask reads task id from Redis, else from PostgreSQL (a task Redis
// lost and the reconciler has not restored yet); a *TaskNotFoundError when
// neither holds it.
func (s *Store) readTask(ctx context.Context, id string) (*taskState, error) {
	t, err := s.redisTask(ctx, id)
	if err != nil || t != nil {
		return t, err
	}
	if t, err = s.settledRow(ctx, id); err != nil || t != nil {
		return t, err
	}
	return nil, &store.TaskNotFoundError{ID: id}
}

// liveTask reads task id from Redis, to change it. A task that only
// PostgreSQL holds (Redis lost it) is restored into Redis first.
func (s *Store) liveTask(ctx context.Context, id string) (*taskState, error) {
	t, err := s.redisTask(ctx, id)
	if err != nil || t != nil {
		return t, err
	}
	kept, err := s.settledRow(ctx, id)
	if err != nil {
		return nil, err
	}
	if kept == nil {
		return nil, &store.TaskNotFoundError{ID: id}
	}
	// A task deleted, or a create settled as not made, whose row
	// PostgreSQL still holds is gone: restore would refuse it.
	gone, err := s.rdb.Exists(ctx, s.k.deletion(id), s.k.createFence(id)).Result()
	if err != nil {
		return nil, s.redisErr(err)
	}
	if gone > 0 {
		return nil, &store.TaskNotFoundError{ID: id}
	}
	// A row written within the reconciler's grace may be a create whose
	// transition is on its way: restoring it would take the task from the
	// create (without its task.created), and let a delete be undone by
	// it. Read again, after a pause, until Redis holds it or the row is
	// older (after Redis lost its data, the retries of one call span the
	// grace).
	if fresh, err := s.freshRow(ctx, id); err != nil || fresh {
		if err == nil {
			pause(ctx, reconcileGrace/maxRetries)
		}
		return nil, cmp.Or(err, errRaced)
	}
	restoreNo, err := s.nextRestore(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.restore(ctx, kept, restoreNo); err != nil && !errors.Is(err, errRaced) {
		return nil, err
	}
	return nil, errRaced // read again
}

// freshRow reports whether PostgreSQL wrote the row of task id within
// reconcileGrace.
func (s *Store) freshRow(ctx context.Context, id string) (bool, error) {
	var fresh bool
	err := s.pg.QueryRow(ctx, "SELECT written_at >= now() - $2::interval FROM tasks WHERE id = $1", id,
		fmt.Sprintf("%d milliseconds", reconcileGrace.Milliseconds())).Scan(&fresh)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return fresh, s.pgErr(err)
}

// GetTask returns a task with its whole result.
func (s *Store) GetTask(ctx context.Context, id string) (*taskwire.Task, error) {
	t, err := boundedValue(ctx, s, func(ctx context.Context) (*taskState, error) { return s.readTask(ctx, id) })
	if err != nil {
		return nil, fmt.Errorf("get task %s: %w", id, err)
	}
	if t.ResultSize > 0 {
		if t.Result, err = s.readResult(ctx, id, t.resultAttempt, t.ResultSize); err != nil {
			return nil, fmt.Errorf("get task %s: %w", id, err)
		}
	}
	return t.Task, nil
}

// persistThenApply commits transition x in Redis inside a PostgreSQL
// transaction that writes the rows of the tasks x saves and deletes, plus
// extra: PostgreSQL commits only after Redis did, and a PostgreSQL that
// fails before changes nothing. (Should the commit itself fail after the
// script, the outbox entries x carries bring PostgreSQL up to date.)
func (s *Store) persistThenApply(ctx context.Context, x *txn, extra func(*pgx.Batch)) error {
	tx, err := s.pg.Begin(ctx)
	if err != nil {
		return s.pgErr(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	queueTaskWrites(b, x.saved, x.deleted)
	if extra != nil {
		extra(b)
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			var pgE *pgconn.PgError
			if errors.As(err, &pgE) && pgE.Code == "40P01" { // deadlock: another writer won
				return errRaced
			}
			return s.pgErr(err)
		}
	}
	if err := s.apply(ctx, x); err != nil {
		return err
	}
	if s.afterScript != nil {
		s.afterScript(tx)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.pgErr(err)
	}
	return nil
}

// UpdateTask changes the given fields of a task by the rules of
// store.UpdateTaskParams.
func (s *Store) UpdateTask(ctx context.Context, p store.UpdateTaskParams) (*taskwire.Task, error) {
	now := truncMs(p.Now)
	var task *taskwire.Task
	err := s.boundedRetry(ctx, func(ctx context.Context) error {
		before, err := s.liveTask(ctx, p.ID)
		if err != nil {
			return err
		}
		r := before.clone()
		if p.Attempt != nil && *p.Attempt != r.Attempt {
			return conflict(r, "stale attempt %d, current %d", *p.Attempt, r.Attempt)
		}
		x := s.txn()
		if p.WorkerID != "" {
			if err := store.HeldBy(r.Task, p.WorkerID); err != nil {
				return err
			}
			r.LeaseExpiresAt = now.Add(time.Duration(r.LeaseMs) * time.Millisecond)
			x.touchWorker(p.WorkerID, now)
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
		var extra func(*pgx.Batch)
		if u.Status != nil {
			if extra, err = changeStatus(r, *u.Status, p.WorkerID, now); err != nil {
				return err
			}
		}
		x.saveTask(before, r, now)
		x.emit(store.TaskUpdatedEvent(r.Task, p.By, store.ChangedFields(before.Task, r.Task), now))
		if u.Status != nil {
			if ev, ok := store.StatusChangeEvent(before.Task, r.Task, *u.Status, p, now); ok {
				x.emit(ev)
			}
		}
		if err := s.persistThenApply(ctx, x, extra); err != nil {
			return err
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
// requeues it (a re-run when it was final: extra deletes its result),
// completed and failed finalize it with no result, in_progress only keeps
// an in_progress task so.
func changeStatus(r *taskState, to taskwire.Status, by string, now time.Time) (extra func(*pgx.Batch), err error) {
	switch to {
	case taskwire.StatusPending:
		if r.Status.Final() {
			extra = func(b *pgx.Batch) {
				b.Queue("DELETE FROM results WHERE task_id = $1", r.ID)
				b.Queue("DELETE FROM staged_results WHERE task_id = $1", r.ID)
			}
		}
		r.requeue()
		return extra, nil
	case taskwire.StatusInProgress:
		if r.Status != taskwire.StatusInProgress {
			return nil, conflict(r, "task is %s: only a claim starts it", r.Status)
		}
		return nil, nil
	case taskwire.StatusCompleted, taskwire.StatusFailed:
		if r.Status.Final() {
			return nil, conflict(r, "task is %s", r.Status)
		}
		r.finalize(to, "", 0, "", by, now)
		return nil, nil
	}
	return nil, fmt.Errorf("status %q: not a task status", to)
}

// AssignTask reserves a pending task for a registered worker.
func (s *Store) AssignTask(ctx context.Context, p store.AssignTaskParams) (*taskwire.Task, error) {
	now := truncMs(p.Now)
	var task *taskwire.Task
	err := s.boundedRetry(ctx, func(ctx context.Context) error {
		before, err := s.liveTask(ctx, p.TaskID)
		if err != nil {
			return err
		}
		w, err := s.getWorker(ctx, p.WorkerID)
		if err != nil {
			return err
		}
		if w == nil || w.Status != taskwire.WorkerOnline {
			return &store.WorkerNotFoundError{ID: p.WorkerID}
		}
		again, err := store.CheckAssign(before.Task, p.WorkerID)
		if err != nil {
			return err
		}
		if again {
			task = before.Task // already reserved for this worker
			return nil
		}
		r := before.clone()
		r.AssignedTo, r.UpdatedAt = p.WorkerID, now
		x := s.txn()
		x.saveTask(before, r, now)
		x.check(s.k.worker(w.ID), w.ver)
		x.Bump = append(x.Bump, s.k.worker(w.ID))
		x.emit(store.TaskAssignedEvent(r.ID, p.WorkerID, p.By, now))
		if err := s.persistThenApply(ctx, x, nil); err != nil {
			return err
		}
		task = r.Task
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
	err := s.boundedRetry(ctx, func(ctx context.Context) error {
		before, err := s.liveTask(ctx, p.TaskID)
		if err != nil {
			return err
		}
		if before.Status.Final() {
			return conflict(before, "task is %s", before.Status)
		}
		previous, task = before.AssignedTo, before.Task
		if previous == "" {
			return nil
		}
		r := before.clone()
		r.requeue()
		r.UpdatedAt = now
		x := s.txn()
		x.saveTask(before, r, now)
		x.emit(store.TaskUnassignedEvent(r.ID, previous, p.By, now))
		if err := s.persistThenApply(ctx, x, nil); err != nil {
			return err
		}
		task = r.Task
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("unassign task %s: %w", p.TaskID, err)
	}
	return previous, task, nil
}

// DeleteTask removes a task, its result and its idempotency key; its row
// stays in PostgreSQL as a tombstone.
func (s *Store) DeleteTask(ctx context.Context, p store.DeleteTaskParams) error {
	err := s.boundedRetry(ctx, func(ctx context.Context) error {
		before, err := s.liveTask(ctx, p.ID)
		if err != nil {
			return err
		}
		x := s.txn()
		x.deleteTask(before)
		x.emit(store.TaskDeletedEvent(before.ID, p.By, truncMs(p.Now)))
		return s.persistThenApply(ctx, x, nil)
	})
	if err != nil {
		return fmt.Errorf("delete task %s: %w", p.ID, err)
	}
	return nil
}

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

// The most one sweep does, so that it holds the writer for about a
// millisecond however much is due: what is left is for the sweeps the
// service runs right after (SweepResult.More), with the callers' ops
// committed in between. The sweep that trimmed a second's events at
// once, 2,500 at 2,500 claims/s, held the writer for 4-6 ms every second,
// and the claims that arrived meanwhile waited that long (claim p99).
// Once the log is full it is trimmed as fast as events are appended: at
// 2,500 claims/s with 1,000,000 queued, steps of 500 events held the
// writer 0.84 ms at the median, 1.6 ms at the 90th percentile, 42 steps
// in four seconds; steps of 100 hold it 0.15 and 0.34 ms, 189 steps, for
// about the same time in all.
const (
	sweepMaxWorkers = 200
	sweepMaxTasks   = 200
	sweepMaxEvents  = 100
)

// Sweep runs one sweep by the rules of store.Lifecycle.Sweep as one
// operation of the writer. A worker that goes offline has the leases of
// its in_progress tasks ended at Now, so that they are returned with the
// expired ones, soonest expiry first, within the bound; each lookup is a
// range of a partial index.
func (s *Store) Sweep(ctx context.Context, p store.SweepParams) (*store.SweepResult, error) {
	now := truncMs(p.Now)
	var res *store.SweepResult
	err := s.w.doRelaxed(ctx, func(tx *writeTx) error {
		res = &store.SweepResult{}
		if err := tx.flushTouches(true); err != nil {
			return err
		}
		if p.WorkerTimeout > 0 {
			if err := sweepWorkers(tx, now, now.Add(-p.WorkerTimeout), res); err != nil {
				return fmt.Errorf("workers: %w", err)
			}
		}
		if err := expireLeases(tx, now, res); err != nil {
			return fmt.Errorf("leases: %w", err)
		}
		if err := trimEvents(tx, now, p, res); err != nil {
			return fmt.Errorf("events: %w", err)
		}
		var next sql.NullInt64
		if err := tx.queryRow(nextRunQuery, ms(now)).Scan(&next); err != nil {
			return fmt.Errorf("next run: %w", err)
		}
		res.NextRunAt = fromMs(next)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sweep at %v: %w", now, err)
	}
	return res, nil
}

// nextRunQuery finds the earliest RunAt of a pending task after now (ms),
// among the tasks created to run later (the tasks_pending_run_at index):
// a task whose RunAt is not after its creation was ready when created.
const nextRunQuery = "SELECT min(run_at) FROM tasks WHERE status = 'pending' AND run_at > created_at AND run_at > ?"

// silentQuery selects the online workers last seen at or before a time
// (ms), silent the longest first: args time, limit.
const silentQuery = `SELECT id, last_seen FROM workers
	WHERE status = 'online' AND last_seen <= ? ORDER BY last_seen LIMIT ?`

// sweepWorkers marks offline the online workers last seen at or before
// seen, releases their reservations and ends the leases of their tasks.
func sweepWorkers(tx *writeTx, now, seen time.Time, res *store.SweepResult) error {
	type silent struct {
		id       string
		lastSeen int64
	}
	rows, err := tx.query(silentQuery, ms(seen), sweepMaxWorkers)
	if err != nil {
		return err
	}
	var workers []silent
	for rows.Next() {
		var w silent
		if err := rows.Scan(&w.id, &w.lastSeen); err != nil {
			rows.Close()
			return err
		}
		workers = append(workers, w)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	res.More = res.More || len(workers) == sweepMaxWorkers
	for _, w := range workers {
		if _, err := tx.exec("UPDATE workers SET status = 'offline' WHERE id = ?", w.id); err != nil {
			return err
		}
		tx.appendEvent(store.WorkerOfflineEvent(w.id, time.UnixMilli(w.lastSeen).UTC(), now))
		if err := releaseReservations(tx, w.id, store.SystemActor, now); err != nil {
			return err
		}
		if _, err := tx.exec(`UPDATE tasks SET lease_expires_at = ?
			WHERE assigned_to = ? AND status = 'in_progress' AND lease_expires_at > ?`,
			ms(now), w.id, ms(now)); err != nil {
			return err
		}
		res.WorkersOffline++
	}
	return nil
}

// expiredQuery selects the in_progress tasks whose lease expired at or
// before a time (ms), soonest first: args time, limit.
const expiredQuery = `SELECT ` + taskColumns + ` FROM tasks
	WHERE status = 'in_progress' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?`

// expireLeases returns the in_progress tasks whose lease has expired to
// pending, or fails those on their last attempt.
func expireLeases(tx *writeTx, now time.Time, res *store.SweepResult) error {
	expired, err := queryTasks(tx, expiredQuery, ms(now), sweepMaxTasks)
	if err != nil {
		return err
	}
	res.More = res.More || len(expired) == sweepMaxTasks
	gone := map[string]bool{} // worker -> offline or unregistered
	for _, r := range expired {
		worker := r.AssignedTo
		offline, ok := gone[worker]
		if !ok {
			w, err := getWorker(tx, worker)
			var notFound *store.WorkerNotFoundError
			switch {
			case errors.As(err, &notFound):
				offline = true
			case err != nil:
				return err
			default:
				offline = w.Status != taskwire.WorkerOnline
			}
			gone[worker] = offline
		}
		reason := store.RequeueLeaseExpired
		if offline {
			reason = store.RequeueWorkerOffline
		}
		requeued, err := releaseTask(tx, r, reason, store.SystemActor, now)
		if err != nil {
			return err
		}
		if requeued {
			res.Requeued++
		} else {
			res.Failed++
		}
	}
	return nil
}

// releaseTask ends the hold of r's worker on r, an in_progress task: back
// to pending (event task.requeued with reason), or failed with "<reason>
// after N attempts" when r is on its last attempt (event task.completed).
// It reports whether r went back to pending.
func releaseTask(tx *writeTx, r *taskRow, reason, by string, now time.Time) (bool, error) {
	var ev taskwire.Event
	requeued := r.Attempt < r.MaxAttempts
	if requeued {
		worker := r.AssignedTo
		r.requeue()
		r.UpdatedAt = now
		ev = store.TaskRequeuedEvent(r.ID, worker, r.Attempt, reason, by, now)
	} else {
		msg := store.LastAttemptError(reason, r.Attempt)
		if err := finalize(tx, r, taskwire.StatusFailed, msg, nil, resultSum(nil), by, now); err != nil {
			return false, err
		}
		ev = store.TaskCompletedEvent(r.Task, by)
	}
	if err := saveTask(tx, r); err != nil {
		return false, err
	}
	tx.appendEvent(ev)
	return requeued, nil
}

// queryTasks returns the tasks query selects (taskColumns) with args.
func queryTasks(tx *writeTx, query string, args ...any) ([]*taskRow, error) {
	rows, err := tx.query(query, args...)
	if err != nil {
		return nil, err
	}
	var tasks []*taskRow
	for rows.Next() {
		r, err := scanTask(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		tasks = append(tasks, r)
	}
	return tasks, errors.Join(rows.Err(), rows.Close())
}

// trimEvents drops events from the oldest end of the log: those older
// than Now - EventRetention and those beyond the newest MaxEvents (the
// events still to be written counted in), at most sweepMaxEvents. The
// log's seqs are contiguous but for the gaps event_gaps records (see
// newestFrom).
func trimEvents(tx *writeTx, now time.Time, p store.SweepParams, res *store.SweepResult) error {
	if p.EventRetention <= 0 && p.MaxEvents <= 0 {
		return nil
	}
	var first, last sql.NullInt64
	if err := tx.queryRow("SELECT (SELECT min(seq) FROM events), (SELECT max(seq) FROM events)").Scan(&first, &last); err != nil {
		return err
	}
	if !first.Valid {
		return nil
	}
	bound := first.Int64 + sweepMaxEvents - 1
	upTo := int64(0) // drop the events with seq <= upTo
	if p.MaxEvents > 0 {
		// The events the batch appended so far, this sweep's among them,
		// are written at commit, after every event the log holds: they
		// are the newest and count among the MaxEvents kept.
		keep := int64(p.MaxEvents - len(tx.events))
		upTo = last.Int64
		if keep > 0 {
			from, err := newestFrom(tx, last.Int64, keep)
			if err != nil {
				return err
			}
			upTo = from - 1
		}
	}
	if p.EventRetention > 0 {
		old, err := oldUpTo(tx, now.Add(-p.EventRetention), first.Int64, bound)
		if err != nil {
			return err
		}
		upTo = max(upTo, old)
	}
	if upTo > bound {
		upTo, res.More = bound, true
	}
	if upTo < first.Int64 {
		return nil
	}
	if upTo >= last.Int64 {
		// The log's newest seq goes: event_ids keeps it (see 0009_event_ids).
		if _, err := tx.exec("UPDATE event_ids SET issued = max(issued, ?)", last.Int64); err != nil {
			return err
		}
	}
	r, err := tx.exec("DELETE FROM events WHERE seq <= ?", upTo)
	if err != nil {
		return err
	}
	n, err := r.RowsAffected()
	res.EventsDropped = int(n)
	return err
}

// newestFrom returns the seq from which the log, whose last seq is last,
// holds its newest n events: last - n + 1, moved down by the size of
// every gap of skipped seqs (after, after + size] it reaches into.
func newestFrom(tx *writeTx, last, n int64) (int64, error) {
	rows, err := tx.query("SELECT after, size FROM event_gaps WHERE after < ? ORDER BY after DESC", last)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	from := last - n + 1
	for rows.Next() {
		var after, size int64
		if err := rows.Scan(&after, &size); err != nil {
			return 0, err
		}
		if after+size < from {
			break // this gap, and every older one, lies below from
		}
		from -= size // the gap's seqs hold no event: take as many older ones
	}
	return from, rows.Err()
}

// oldUpTo returns the last seq of the run of events older than cutoff
// that starts the log, looking no further than seq bound (first - 1 when
// the oldest event is not old).
func oldUpTo(tx *writeTx, cutoff time.Time, first, bound int64) (int64, error) {
	rows, err := tx.query("SELECT seq, ts FROM events WHERE seq <= ? ORDER BY seq", bound)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	upTo := first - 1
	for rows.Next() {
		var seq, ts int64
		if err := rows.Scan(&seq, &ts); err != nil {
			return 0, err
		}
		if ts >= cutoff.UnixMilli() {
			break
		}
		upTo = seq
	}
	return upTo, rows.Err()
}

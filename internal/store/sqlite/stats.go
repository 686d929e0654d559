package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// oldestPendingQuery finds when a queue's oldest ready pending task became
// ready, the later of its creation and its run_at: args queue, now. A
// task's ready time is not after now exactly when its run_at is not (its
// creation is never after now), so the query is a min over a range of
// tasks_pending_ready, which skips the delayed tasks not due yet.
const oldestPendingQuery = `SELECT min(max(created_at, coalesce(run_at, created_at))) FROM tasks
	WHERE queue = ? AND status = 'pending' AND max(created_at, coalesce(run_at, created_at)) <= ?`

// Stats counts tasks by queue and status from the counts the writer keeps
// (see count), and finds when each queue's oldest ready pending task
// became ready with one index seek: it never scans the tasks.
func (s *Store) Stats(ctx context.Context, now time.Time) (*store.Stats, error) {
	st := &store.Stats{Workers: map[taskwire.WorkerStatus]int{}}
	err := s.view(ctx, func(tx *readTx) error {
		rows, err := tx.query("SELECT queue, status, n FROM task_counts WHERE n > 0 ORDER BY queue")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var queue, status string
			var n int
			if err := rows.Scan(&queue, &status, &n); err != nil {
				return err
			}
			if len(st.Queues) == 0 || st.Queues[len(st.Queues)-1].Queue != queue {
				st.Queues = append(st.Queues, store.QueueStats{Queue: queue, ByStatus: map[taskwire.Status]int{}})
			}
			st.Queues[len(st.Queues)-1].ByStatus[taskwire.Status(status)] = n
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i, q := range st.Queues {
			if q.ByStatus[taskwire.StatusPending] == 0 {
				continue
			}
			var oldest sql.NullInt64
			if err := tx.queryRow(oldestPendingQuery, q.Queue, now.UnixMilli()).Scan(&oldest); err != nil {
				return err
			}
			st.Queues[i].OldestPending = fromMs(oldest)
		}
		workers, err := tx.query("SELECT status, count(*) FROM workers GROUP BY status")
		if err != nil {
			return err
		}
		defer workers.Close()
		for workers.Next() {
			var status string
			var n int
			if err := workers.Scan(&status, &n); err != nil {
				return err
			}
			st.Workers[taskwire.WorkerStatus(status)] = n
		}
		return workers.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// countChange is a change of the number of tasks of one queue and status.
type countChange struct {
	queue  string
	status taskwire.Status
	n      int
}

// count records that the op changed the number of tasks of queue in status
// by n; flushCounts writes the batch's changes to task_counts. Every
// insert, delete and change of status of a task is counted, so that Stats
// reads the counts without scanning the tasks.
func (t *writeTx) count(queue string, status taskwire.Status, n int) {
	t.counts = append(t.counts, countChange{queue, status, n})
}

// flushCounts adds the batch's count changes to task_counts, one statement
// per queue and status whose count changed: far fewer than one per change.
func (t *writeTx) flushCounts() error {
	type key struct {
		queue  string
		status taskwire.Status
	}
	sum := make(map[key]int, 8)
	var order []key
	for _, c := range t.counts {
		k := key{c.queue, c.status}
		if _, ok := sum[k]; !ok {
			order = append(order, k)
		}
		sum[k] += c.n
	}
	for _, k := range order {
		if sum[k] == 0 {
			continue
		}
		if _, err := t.exec(`INSERT INTO task_counts (queue, status, n) VALUES (?, ?, ?)
			ON CONFLICT (queue, status) DO UPDATE SET n = n + excluded.n`, k.queue, string(k.status), sum[k]); err != nil {
			return fmt.Errorf("task counts of %s %s: %w", k.queue, k.status, err)
		}
	}
	return nil
}

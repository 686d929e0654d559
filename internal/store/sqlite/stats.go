package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
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
// (see taskCounts), and finds when each queue's oldest ready pending task
// became ready with one index seek: it never scans the tasks.
func (s *Store) Stats(ctx context.Context, now time.Time) (*store.Stats, error) {
	st := &store.Stats{Workers: map[taskwire.WorkerStatus]int{}}
	err := s.view(ctx, func(tx *readTx) error {
		st.Queues = s.w.counts.byQueue()
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
// by n; the writer adds the batch's changes to its taskCounts once the
// batch has committed. Every insert, delete and change of status of a task
// is counted, so that Stats and ListTasks read the counts without scanning
// the tasks.
func (t *writeTx) count(queue string, status taskwire.Status, n int) {
	t.counts = append(t.counts, countChange{queue, status, n})
}

// countKey names the tasks of one queue in one status.
type countKey struct {
	queue  string
	status taskwire.Status
}

// taskCounts is the number of tasks of each queue and status as of the
// writer's last commit. It lives in memory: writing it with every batch
// rewrote a page (task_counts) and ran two statements per claim. The
// table holds it only between a clean Close and the next Open, which
// reads it and empties it; an Open that finds it empty (after a crash, or
// a Close that could not write it) counts the tasks instead.
type taskCounts struct {
	mu sync.Mutex
	n  map[countKey]int
}

// add adds a committed batch's changes.
func (c *taskCounts) add(changes []countChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		c.n[countKey{ch.queue, ch.status}] += ch.n
	}
}

// sum returns the number of tasks in queue (any when "") and status (any
// when "").
func (c *taskCounts) sum(queue string, status taskwire.Status) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for k, n := range c.n {
		if (queue == "" || k.queue == queue) && (status == "" || k.status == status) {
			total += n
		}
	}
	return total
}

// byQueue returns the counts that are not zero, by queue, ordered by
// queue.
func (c *taskCounts) byQueue() []store.QueueStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var qs []store.QueueStats
	for _, k := range slices.SortedFunc(maps.Keys(c.n), func(a, b countKey) int { return strings.Compare(a.queue, b.queue) }) {
		if c.n[k] == 0 {
			continue
		}
		if len(qs) == 0 || qs[len(qs)-1].Queue != k.queue {
			qs = append(qs, store.QueueStats{Queue: k.queue, ByStatus: map[taskwire.Status]int{}})
		}
		qs[len(qs)-1].ByStatus[k.status] = c.n[k]
	}
	return qs
}

// loadCounts reads the counts a clean Close left in task_counts and
// empties the table, or counts the tasks when it is empty.
func loadCounts(ctx context.Context, conn *sql.Conn) (*taskCounts, error) {
	c := &taskCounts{n: map[countKey]int{}}
	for _, query := range []string{
		"SELECT queue, status, n FROM task_counts",
		"SELECT queue, status, count(*) FROM tasks GROUP BY queue, status",
	} {
		if err := c.read(ctx, conn, query); err != nil || len(c.n) > 0 {
			if err != nil {
				return nil, fmt.Errorf("task counts: %w", err)
			}
			break
		}
	}
	if _, err := conn.ExecContext(ctx, "DELETE FROM task_counts"); err != nil {
		return nil, fmt.Errorf("task counts: %w", err)
	}
	return c, nil
}

func (c *taskCounts) read(ctx context.Context, conn *sql.Conn, query string) error {
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k countKey
		var n int
		if err := rows.Scan(&k.queue, &k.status, &n); err != nil {
			return err
		}
		c.n[k] = n
	}
	return rows.Err()
}

// save writes the counts to task_counts, for the next Open (see
// taskCounts).
func (c *taskCounts) save(ctx context.Context, conn *sql.Conn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save task counts: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	for k, n := range c.n {
		if n == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO task_counts (queue, status, n) VALUES (?, ?, ?)",
			k.queue, string(k.status), n); err != nil {
			return fmt.Errorf("save task counts: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save task counts: %w", err)
	}
	return nil
}

package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// ClaimTasks takes up to p.MaxTasks ready tasks for a worker by the rules
// of store.Store.ClaimTasks. It runs in the writer, which runs one
// operation at a time, so a task read as ready here is still ready when it
// is taken, and no task is handed out twice. Each lookup is a seek in a
// partial index of pending tasks, whatever their number.
func (s *Store) ClaimTasks(ctx context.Context, p store.ClaimTasksParams) ([]*taskwire.Task, error) {
	n := max(p.MaxTasks, 1)
	now := truncMs(p.Now)
	var tasks []*taskwire.Task
	err := s.w.doRelaxed(ctx, func(tx *writeTx) error {
		w, err := getWorker(tx, p.WorkerID)
		if err != nil {
			return err
		}
		if w.Status != taskwire.WorkerOnline {
			return &store.WorkerNotFoundError{ID: p.WorkerID}
		}
		tx.touchWorker(p.WorkerID, now)
		queues := p.Queues
		if len(queues) == 0 {
			queues = w.Queues
		}
		if len(queues) == 0 {
			queues = []string{taskwire.DefaultQueue}
		}
		picked, err := reservedFor(tx, p.WorkerID, now, n)
		if err != nil {
			return err
		}
		if len(picked) < n {
			ready, err := readyIn(tx, queues, now, n-len(picked))
			if err != nil {
				return err
			}
			picked = append(picked, ready...)
		}
		if tasks, err = take(tx, picked, p.WorkerID, now); err != nil {
			return err
		}
		for _, t := range tasks {
			tx.appendEvent(store.TaskClaimedEvent(t.ID, p.WorkerID, now))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim for %s: %w", p.WorkerID, err)
	}
	return tasks, nil
}

// take makes the picked tasks in_progress for worker, with one statement,
// and returns them in the order picked.
func take(tx *writeTx, picked []candidate, worker string, now time.Time) ([]*taskwire.Task, error) {
	if len(picked) == 0 {
		return nil, nil
	}
	order := make(map[int64]int, len(picked))
	args := []any{worker, now.UnixMilli(), now.UnixMilli()}
	for i, c := range picked {
		order[c.seq] = i
		args = append(args, c.seq)
	}
	rows, err := tx.query(`UPDATE tasks SET status = 'in_progress', assigned_to = ?,
		attempt = attempt + 1, lease_expires_at = ? + lease_ms, updated_at = ?
		WHERE seq IN (?`+strings.Repeat(", ?", len(picked)-1)+`) RETURNING `+taskColumns, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tasks := make([]*taskwire.Task, len(picked))
	for rows.Next() {
		r, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		tasks[order[r.seq]] = r.Task
		// Candidates are pending tasks.
		tx.count(r.Queue, taskwire.StatusPending, -1)
		tx.count(r.Queue, taskwire.StatusInProgress, 1)
	}
	return tasks, rows.Err()
}

// candidate is a ready task in claim order: highest priority, then
// oldest, then lowest id (ids sort in creation order within a
// millisecond, whatever order concurrent creates were stored in).
type candidate struct {
	seq       int64
	priority  int
	createdAt int64
	id        string
}

func (c candidate) compare(d candidate) int {
	return cmp.Or(cmp.Compare(d.priority, c.priority), cmp.Compare(c.createdAt, d.createdAt), strings.Compare(c.id, d.id))
}

// reservedQuery selects a worker's ready reserved tasks in claim order:
// args worker, now (ms), limit.
const reservedQuery = `SELECT seq, priority, created_at, id FROM tasks
	WHERE assigned_to = ? AND status = 'pending' AND (run_at IS NULL OR run_at <= ?)
	ORDER BY priority DESC, created_at, id LIMIT ?`

// readyQuery selects a queue's unreserved ready tasks in claim order: args
// queue, now (ms), limit.
const readyQuery = `SELECT seq, priority, created_at, id FROM tasks
	WHERE queue = ? AND status = 'pending' AND assigned_to IS NULL AND (run_at IS NULL OR run_at <= ?)
	ORDER BY priority DESC, created_at, id LIMIT ?`

// reservedFor returns up to n ready tasks reserved for worker, best first.
func reservedFor(tx *writeTx, worker string, now time.Time, n int) ([]candidate, error) {
	return candidates(tx, reservedQuery, worker, now.UnixMilli(), n)
}

// readyIn returns up to n unreserved ready tasks of the queues, best first:
// the best n of each queue, merged.
func readyIn(tx *writeTx, queues []string, now time.Time, n int) ([]candidate, error) {
	var all []candidate
	for _, q := range slices.Compact(slices.Sorted(slices.Values(queues))) {
		cs, err := candidates(tx, readyQuery, q, now.UnixMilli(), n)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", q, err)
		}
		all = append(all, cs...)
	}
	slices.SortFunc(all, candidate.compare)
	return all[:min(n, len(all))], nil
}

func candidates(tx *writeTx, query string, args ...any) ([]candidate, error) {
	rows, err := tx.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cs []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.seq, &c.priority, &c.createdAt, &c.id); err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

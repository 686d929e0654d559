package redispg

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// orderColumns maps task.list's orderBy to a column; text columns compare
// byte by byte, as in embedded mode.
var orderColumns = map[store.OrderBy]string{
	"":                       "created_at",
	store.OrderByCreatedAt:   "created_at",
	store.OrderByUpdatedAt:   "updated_at",
	store.OrderByPriority:    "priority",
	store.OrderByStatus:      `status COLLATE "C"`,
	store.OrderByAssignedTo:  `assigned_to COLLATE "C"`,
	store.OrderByCompletedAt: "completed_at",
}

// listResult reads, next to a list row, its result when it is small enough
// for list rows: then it is its first and only chunk.
var listResult = fmt.Sprintf(`CASE WHEN result_size BETWEEN 1 AND %d THEN
	(SELECT data FROM results r WHERE r.task_id = tasks.id AND r.attempt = tasks.result_attempt AND r.seq = 0) END`,
	taskwire.ListResultLimit)

// settled brings PostgreSQL's rows to what the callers were answered: it
// settles the creates of unknown outcome, then applies the outbox.
func (s *Store) settled(ctx context.Context) error {
	if err := s.settleAllUnsettled(ctx); err != nil {
		return err
	}
	return s.flushOutbox(ctx)
}

// ListTasks returns one page of the tasks matching p from PostgreSQL,
// after applying the outbox, so that the page shows every change
// acknowledged before the call, and after settling the creates of unknown
// outcome, so that it shows no task whose create answered an error. The
// count and the page are two statements, which may see different writes:
// the page, read one row past its limit, sets the total where they
// disagree (store.PageTotal).
func (s *Store) ListTasks(ctx context.Context, p store.ListTasksParams) (tasks []*taskwire.Task, total int, err error) {
	err = s.bounded(ctx, func(ctx context.Context) (err error) {
		tasks, total, err = s.listTasks(ctx, p)
		return err
	})
	return tasks, total, err
}

func (s *Store) listTasks(ctx context.Context, p store.ListTasksParams) ([]*taskwire.Task, int, error) {
	order, ok := orderColumns[p.OrderBy]
	if !ok {
		return nil, 0, fmt.Errorf("list tasks: cannot order by %q", p.OrderBy)
	}
	if err := s.settled(ctx); err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", err)
	}
	dir := " ASC"
	if p.Desc {
		dir = " DESC"
	}
	order += dir + " NULLS LAST, id COLLATE \"C\"" + dir
	limit := p.Limit
	if limit <= 0 {
		limit = taskwire.DefaultListSize
	}
	conds, args := []string{"NOT deleted"}, []any{}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+" = $"+strconv.Itoa(len(args)))
	}
	if p.Status != "" {
		add("status", string(p.Status))
	}
	if p.Queue != "" {
		add("queue", p.Queue)
	}
	if p.AssignedTo != "" {
		add("assigned_to", p.AssignedTo)
	}
	if p.Priority != nil {
		add("priority", *p.Priority)
	}
	where := " WHERE " + strings.Join(conds, " AND ")
	var total int
	if err := s.pg.QueryRow(ctx, "SELECT count(*) FROM tasks"+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", s.pgErr(err))
	}
	n := len(args)
	rows, err := s.pg.Query(ctx, "SELECT "+taskColumns+", "+listResult+" FROM tasks"+where+" ORDER BY "+order+
		fmt.Sprintf(" LIMIT $%d OFFSET $%d", n+1, n+2), append(args, limit+1, max(p.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", s.pgErr(err))
	}
	defer rows.Close()
	var tasks []*taskwire.Task
	for rows.Next() {
		var small []byte
		r, err := scanTaskRow(extraScanner{rows, &small})
		if err != nil {
			return nil, 0, fmt.Errorf("list tasks: %w", err)
		}
		r.Result = small
		r.ResultTruncated = r.ResultSize > taskwire.ListResultLimit
		tasks = append(tasks, r.Task)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", s.pgErr(err))
	}
	more := len(tasks) > limit
	if more {
		tasks = tasks[:limit]
	}
	return tasks, store.PageTotal(p.Offset, len(tasks), more, total), nil
}

// extraScanner scans one more column after those of scanTaskRow.
type extraScanner struct {
	sc    rowScanner
	extra any
}

func (e extraScanner) Scan(dest ...any) error { return e.sc.Scan(append(dest, e.extra)...) }

// Stats counts tasks by queue and status in PostgreSQL, once it holds what
// the callers were answered (see settled), and finds when each queue's
// oldest ready pending task became ready (the later of its creation and
// its run_at, not after now: delayed tasks not due yet are left out);
// workers are counted in Redis.
func (s *Store) Stats(ctx context.Context, now time.Time) (*store.Stats, error) {
	return boundedValue(ctx, s, func(ctx context.Context) (*store.Stats, error) { return s.stats(ctx, now) })
}

func (s *Store) stats(ctx context.Context, now time.Time) (*store.Stats, error) {
	if err := s.settled(ctx); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	st := &store.Stats{Workers: map[taskwire.WorkerStatus]int{}}
	rows, err := s.pg.Query(ctx, `SELECT queue, status, count(*),
		min(greatest(created_at, run_at)) FILTER (WHERE greatest(created_at, run_at) <= $1) FROM tasks
		WHERE NOT deleted GROUP BY queue, status ORDER BY queue COLLATE "C"`, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("stats: %w", s.pgErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var queue, status string
		var n int
		var oldest pgtype.Int8
		if err := rows.Scan(&queue, &status, &n, &oldest); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		if len(st.Queues) == 0 || st.Queues[len(st.Queues)-1].Queue != queue {
			st.Queues = append(st.Queues, store.QueueStats{Queue: queue, ByStatus: map[taskwire.Status]int{}})
		}
		q := &st.Queues[len(st.Queues)-1]
		q.ByStatus[taskwire.Status(status)] = n
		if status == string(taskwire.StatusPending) && oldest.Valid {
			q.OldestPending = time.UnixMilli(oldest.Int64).UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stats: %w", s.pgErr(err))
	}
	workers, err := s.listWorkers(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	for _, w := range workers {
		st.Workers[w.Status]++
	}
	return st, nil
}

package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// orderColumns maps task.list's orderBy to a column.
var orderColumns = map[store.OrderBy]string{
	"":                       "created_at",
	store.OrderByCreatedAt:   "created_at",
	store.OrderByUpdatedAt:   "updated_at",
	store.OrderByPriority:    "priority",
	store.OrderByStatus:      "status",
	store.OrderByAssignedTo:  "assigned_to",
	store.OrderByCompletedAt: "completed_at",
}

// listResult reads, next to a list row, its result when it is small enough
// for list rows: then it is the task's first and only chunk.
var listResult = fmt.Sprintf(`CASE WHEN result_size BETWEEN 1 AND %d THEN
	(SELECT data FROM result_chunks c WHERE c.task_id = tasks.id AND c.seq = 0) END`, taskwire.ListResultLimit)

// ListTasks returns one page of the tasks matching p and the number of all
// matching tasks. Counts filtered by queue and status alone come from the
// kept counts, without a scan; they are of the writer's last commit, not
// of the page's snapshot, so the page, read one row past its limit, sets
// the total where they disagree (store.PageTotal). Other counts are of the
// page's snapshot.
func (s *Store) ListTasks(ctx context.Context, p store.ListTasksParams) ([]*taskwire.Task, int, error) {
	order, ok := orderColumns[p.OrderBy]
	if !ok {
		return nil, 0, fmt.Errorf("list tasks: cannot order by %q", p.OrderBy)
	}
	dir := " ASC"
	if p.Desc {
		dir = " DESC"
	}
	order += dir
	if p.OrderBy == store.OrderByAssignedTo || p.OrderBy == store.OrderByCompletedAt {
		order += " NULLS LAST" // unassigned, not completed: last in both directions
	}
	order += ", id" + dir
	limit := p.Limit
	if limit <= 0 {
		limit = taskwire.DefaultListSize
	}

	var conds []string
	var args []any
	if p.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, string(p.Status))
	}
	if p.Queue != "" {
		conds, args = append(conds, "queue = ?"), append(args, p.Queue)
	}
	// The writer's counts give the total, unless the filter is one they
	// do not keep.
	counted := true
	if p.AssignedTo != "" {
		conds, args = append(conds, "assigned_to = ?"), append(args, p.AssignedTo)
		counted = false
	}
	if p.Priority != nil {
		conds, args = append(conds, "priority = ?"), append(args, *p.Priority)
		counted = false
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}

	var tasks []*taskwire.Task
	total := 0
	err := s.view(ctx, func(tx *readTx) error {
		if counted {
			total = s.w.counts.sum(p.Queue, p.Status)
		} else if err := tx.queryRow("SELECT count(*) FROM tasks"+where, args...).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.query("SELECT "+taskColumns+", "+listResult+" FROM tasks"+where+
			" ORDER BY "+order+" LIMIT ? OFFSET ?", append(args, limit+1, max(p.Offset, 0))...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var small []byte
			r, err := scanTask(rows, &small)
			if err != nil {
				return err
			}
			r.Result = small
			r.ResultTruncated = r.ResultSize > taskwire.ListResultLimit
			tasks = append(tasks, r.Task)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list tasks: %w", err)
	}
	more := len(tasks) > limit
	if more {
		tasks = tasks[:limit]
	}
	return tasks, store.PageTotal(p.Offset, len(tasks), more, total), nil
}

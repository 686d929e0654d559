package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/store"
)

// principal names the caller of ctx: its token name, else the worker id
// the call names, else its client address (host only). Rate limits are
// kept per principal, and events name it as who made the change.
func principal(ctx context.Context, workerID string) string {
	c := CallerFrom(ctx)
	if c.Name != "" {
		return c.Name
	}
	if workerID != "" {
		return workerID
	}
	if host, _, err := net.SplitHostPort(c.Addr); err == nil {
		return host
	}
	return c.Addr
}

// limit checks that the caller's role allows method on workerID (see
// authorize), then applies the rate limit of method to the caller's
// principal. A refused call is not counted against the limit.
func (s *Service) limit(ctx context.Context, method, workerID string) error {
	if err := s.authorize(ctx, method, workerID); err != nil {
		return err
	}
	return s.limiter.Allow(ctx, method, principal(ctx, workerID))
}

// CreateTask implements task.create.
func (s *Service) CreateTask(ctx context.Context, p *taskwire.CreateParams) (*taskwire.Task, error) {
	if err := s.limit(ctx, taskwire.MethodTaskCreate, ""); err != nil {
		return nil, err
	}
	now := s.now()
	t := taskwire.Task{
		ID:          s.ids.taskID(now),
		Queue:       orDefault(p.Queue, taskwire.DefaultQueue),
		Text:        p.Text,
		Status:      taskwire.StatusPending,
		Priority:    intOr(p.Priority, taskwire.DefaultPriority),
		Metadata:    nullToNil(p.Metadata),
		MaxAttempts: intOr(p.MaxAttempts, taskwire.DefaultMaxAttempts),
		LeaseMs:     int64Or(p.LeaseMs, taskwire.DefaultLeaseMs),
		RunAt:       now,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	switch {
	case p.RunAt != nil && p.RunAt.After(now):
		// A runAt in the past is ready now, as a task without one.
		t.RunAt = p.RunAt.UTC().Truncate(time.Millisecond)
	case p.DelayMs != nil:
		t.RunAt = now.Add(time.Duration(*p.DelayMs) * time.Millisecond)
	}
	task, created, err := s.store.CreateTask(ctx, store.CreateTaskParams{
		Task: t, IdempotencyKey: p.IdempotencyKey,
		IdempotencyWindow: s.cfg.IdempotencyWindow, By: principal(ctx, ""), Now: now,
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.ready.notifyAt(task.RunAt.Sub(now))
		return task, nil
	}
	return s.withResult(ctx, task), nil
}

// GetTask implements task.get.
func (s *Service) GetTask(ctx context.Context, p *taskwire.GetParams) (*taskwire.Task, error) {
	if err := s.limit(ctx, taskwire.MethodTaskGet, ""); err != nil {
		return nil, err
	}
	release, err := s.reserveResult(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if !rpc.Hold(ctx, release) {
		defer release()
	}
	return s.store.GetTask(ctx, p.ID)
}

// ListTasks implements task.list.
func (s *Service) ListTasks(ctx context.Context, p *taskwire.ListParams) (*taskwire.ListResult, error) {
	if err := s.limit(ctx, taskwire.MethodTaskList, ""); err != nil {
		return nil, err
	}
	q := store.ListTasksParams{
		Status: p.Status, AssignedTo: p.AssignedTo, Priority: p.Priority,
		Queue: p.Queue, Limit: intOr(p.Limit, taskwire.DefaultListSize),
		Offset:  intOr(p.Offset, 0),
		OrderBy: store.OrderBy(orDefault(p.OrderBy, string(store.OrderByCreatedAt))),
		Desc:    p.Order != "asc",
	}
	tasks, total, err := s.store.ListTasks(ctx, q)
	if err != nil {
		return nil, err
	}
	if tasks == nil {
		tasks = []*taskwire.Task{}
	}
	// The store's total agrees with the page it read (store.PageTotal):
	// it is above the rows up to the page's end exactly when more follow.
	return &taskwire.ListResult{Tasks: tasks, TotalCount: total,
		HasMore: q.Offset+len(tasks) < total}, nil
}

// UpdateTask implements task.update. A worker-role caller acts as its own
// worker: it may update only the in-progress task assigned to it, and
// never its status.
func (s *Service) UpdateTask(ctx context.Context, p *taskwire.UpdateParams) (*taskwire.Task, error) {
	worker := s.actingWorker(ctx, p.WorkerID)
	if err := s.checkStatusChange(ctx, &p.Updates); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, taskwire.MethodTaskUpdate, worker); err != nil {
		return nil, err
	}
	task, err := s.store.UpdateTask(ctx, store.UpdateTaskParams{
		ID: p.ID, Updates: p.Updates, WorkerID: worker,
		Attempt: p.Attempt, By: principal(ctx, worker), Now: s.now(),
	})
	if err != nil {
		return nil, s.otherWorkersTask(ctx, err)
	}
	if p.Updates.Status != nil {
		s.audit(ctx, taskwire.MethodTaskUpdate, p.ID, slog.String("status", string(*p.Updates.Status)))
	}
	if task.Status == taskwire.StatusPending {
		s.ready.notify()
	}
	return s.withResult(ctx, task), nil
}

// withResult gives a task that the store returned without its result the
// result as a task.list row has it: whole up to taskwire.ListResultLimit
// bytes, else left out and flagged (resultTruncated), as it is also when it
// cannot be read back (a re-run or deletion in between).
func (s *Service) withResult(ctx context.Context, t *taskwire.Task) *taskwire.Task {
	if t.Result != nil || t.ResultSize == 0 {
		return t
	}
	t.ResultTruncated = true
	if t.ResultSize > taskwire.ListResultLimit {
		return t
	}
	rc, size, err := s.store.OpenResult(ctx, t.ID)
	if err != nil {
		return t
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, taskwire.ListResultLimit+1))
	if err != nil || size != t.ResultSize || int64(len(b)) != size {
		return t
	}
	t.Result, t.ResultTruncated = b, false
	return t
}

// AssignTask implements task.assign.
func (s *Service) AssignTask(ctx context.Context, p *taskwire.AssignParams) (*taskwire.AssignResult, error) {
	if err := s.limit(ctx, taskwire.MethodTaskAssign, ""); err != nil {
		return nil, err
	}
	now := s.now()
	if _, err := s.store.AssignTask(ctx, store.AssignTaskParams{
		TaskID: p.TaskID, WorkerID: p.Worker(), By: principal(ctx, ""), Now: now,
	}); err != nil {
		return nil, err
	}
	s.audit(ctx, taskwire.MethodTaskAssign, p.TaskID, slog.String("worker", p.Worker()))
	s.ready.notify()
	return &taskwire.AssignResult{TaskID: p.TaskID, WorkerID: p.Worker(),
		AssignedAt: taskwire.NewTime(now)}, nil
}

// UnassignTask implements task.unassign.
func (s *Service) UnassignTask(ctx context.Context, p *taskwire.UnassignParams) (*taskwire.UnassignResult, error) {
	if err := s.limit(ctx, taskwire.MethodTaskUnassign, ""); err != nil {
		return nil, err
	}
	now := s.now()
	prev, _, err := s.store.UnassignTask(ctx, store.UnassignTaskParams{TaskID: p.TaskID, By: principal(ctx, ""), Now: now})
	if err != nil {
		return nil, err
	}
	s.audit(ctx, taskwire.MethodTaskUnassign, p.TaskID, slog.String("previous", prev))
	s.ready.notify()
	r := &taskwire.UnassignResult{TaskID: p.TaskID, UnassignedAt: taskwire.NewTime(now)}
	if prev != "" {
		r.PreviousAssignment = &prev
	}
	return r, nil
}

// DeleteTask implements task.delete.
func (s *Service) DeleteTask(ctx context.Context, p *taskwire.DeleteParams) (*taskwire.DeleteResult, error) {
	if err := s.limit(ctx, taskwire.MethodTaskDelete, ""); err != nil {
		return nil, err
	}
	now := s.now()
	if err := s.store.DeleteTask(ctx, store.DeleteTaskParams{ID: p.ID, By: principal(ctx, ""), Now: now}); err != nil {
		return nil, err
	}
	s.audit(ctx, taskwire.MethodTaskDelete, p.ID)
	return &taskwire.DeleteResult{ID: p.ID, Deleted: true, DeletedAt: taskwire.NewTime(now)}, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

func int64Or(p *int64, def int64) int64 {
	if p == nil {
		return def
	}
	return *p
}

func nullToNil(m []byte) []byte {
	if string(m) == "null" {
		return nil
	}
	return m
}

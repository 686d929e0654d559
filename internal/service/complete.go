package service

import (
	"context"
	"encoding/json"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// CompleteTask implements task.complete: with error the task fails,
// otherwise it completes with result. A retry of a completion that already
// succeeded, with the same outcome, answers as the first call did, and
// is not counted again in the completion rate and total. A
// worker-role caller acts as its own worker: it may complete only a task
// assigned to it.
func (s *Service) CompleteTask(ctx context.Context, p *taskwire.CompleteParams) (*taskwire.CompleteResult, error) {
	worker := s.actingWorker(ctx, p.WorkerID)
	if err := s.limit(ctx, taskwire.MethodTaskComplete, worker); err != nil {
		return nil, err
	}
	q := store.CompleteTaskParams{
		ID: p.TaskRef(), WorkerID: worker, Result: p.Result,
		Attempt: p.Attempt, By: principal(ctx, worker), Now: s.now(),
	}
	if q.Result == nil {
		q.Result = json.RawMessage("null") // every final task has a result to read
	}
	if p.Error != nil {
		q.Failed, q.Error = true, *p.Error
	}
	task, finalized, err := s.store.CompleteTask(ctx, q)
	if err != nil {
		return nil, s.otherWorkersTask(ctx, err)
	}
	if finalized { // a retry changed nothing: the completion counts once
		s.rates.addCompleted(s.now())
	}
	return &taskwire.CompleteResult{ID: task.ID, Status: task.Status,
		CompletedAt: taskwire.NewTime(task.CompletedAt)}, nil
}

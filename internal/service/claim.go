package service

import (
	"context"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// ClaimTasks implements task.claim. With waitMs it long-polls: when nothing
// is ready it waits for a ready signal (a task created, requeued or
// unassigned in this process, or a delayed task come due) and tries again,
// until a claim succeeds, the wait ends or the caller goes away. A worker
// waiting in a long poll is alive: each claim attempt records it as seen,
// and the wait tries again every third of the worker timeout. That is no
// heartbeat: the leases of the tasks the worker holds are not renewed. A
// worker may have at most Config.MaxWaitingClaims long polls waiting at
// once; one more is refused with -32000.
func (s *Service) ClaimTasks(ctx context.Context, p *taskwire.ClaimParams) (*taskwire.ClaimResult, error) {
	if err := s.limit(ctx, taskwire.MethodTaskClaim, p.WorkerID); err != nil {
		return nil, err
	}
	var deadline, keepAlive <-chan time.Time
	if wait := int64Or(p.WaitMs, 0); wait > 0 {
		if err := s.waiters.enter(p.WorkerID); err != nil {
			return nil, err
		}
		defer s.waiters.leave(p.WorkerID)
		t := time.NewTimer(time.Duration(wait) * time.Millisecond)
		defer t.Stop()
		deadline = t.C
		tick := time.NewTicker(s.cfg.WorkerTimeout / 3)
		defer tick.Stop()
		keepAlive = tick.C
	}
	for {
		if ctx.Err() != nil { // a wake-up may win the race with the end
			return nil, context.Cause(ctx)
		}
		woken := s.ready.wait() // taken before the attempt, so no signal is missed
		tasks, err := s.store.ClaimTasks(ctx, store.ClaimTasksParams{
			WorkerID: p.WorkerID, Queues: p.Queues,
			MaxTasks: intOr(p.MaxTasks, 1), Now: s.now(),
		})
		if err != nil {
			return nil, err
		}
		if len(tasks) > 0 {
			s.rates.addClaimed(s.now(), len(tasks))
			return &taskwire.ClaimResult{Claimed: true, TaskID: tasks[0].ID,
				Task: tasks[0], Tasks: tasks}, nil
		}
		if deadline == nil {
			return &taskwire.ClaimResult{}, nil
		}
		select {
		case <-keepAlive: // try again, a sign of life
		case <-woken:
		case <-deadline:
			return &taskwire.ClaimResult{}, nil
		case <-s.draining:
			return &taskwire.ClaimResult{}, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx) // a revoked token's -32002, say
		}
	}
}

package redispg

import (
	"context"
	"fmt"
	"slices"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// claimedTaskID stands for the task id in the task.claimed event that
// ClaimTasks builds before claim.lua knows the tasks.
const claimedTaskID = "@TASK@"

// ClaimTasks takes up to p.MaxTasks ready tasks for a worker in one run
// of claim.lua, which picks and claims them atomically: no task is handed
// out twice, whichever process asks. The claims reach PostgreSQL through
// the outbox.
func (s *Store) ClaimTasks(ctx context.Context, p store.ClaimTasksParams) ([]*taskwire.Task, error) {
	return boundedValue(ctx, s, func(ctx context.Context) ([]*taskwire.Task, error) { return s.claimTasks(ctx, p) })
}

func (s *Store) claimTasks(ctx context.Context, p store.ClaimTasksParams) ([]*taskwire.Task, error) {
	n := max(p.MaxTasks, 1)
	queues := p.Queues
	if len(queues) == 0 {
		w, err := s.getWorker(ctx, p.WorkerID)
		if err != nil {
			return nil, fmt.Errorf("claim for %s: %w", p.WorkerID, err)
		}
		if w == nil {
			return nil, fmt.Errorf("claim: %w", &store.WorkerNotFoundError{ID: p.WorkerID})
		}
		queues = w.Queues
	}
	if len(queues) == 0 {
		queues = []string{taskwire.DefaultQueue}
	}
	keys := []string{s.k.eventSeq(), s.k.events(), s.k.outbox(), s.k.worker(p.WorkerID), s.k.delayed(),
		s.k.leases(), s.k.reserved(p.WorkerID), s.k.held(p.WorkerID), s.k.seen()}
	for _, q := range slices.Compact(slices.Sorted(slices.Values(queues))) {
		keys = append(keys, s.k.ready(q))
	}
	now := truncMs(p.Now)
	ev := store.TaskClaimedEvent(claimedTaskID, p.WorkerID, now)
	res, err := s.scripts.claim.Run(ctx, s.rdb, keys, now.UnixMilli(), n, p.WorkerID,
		string(ev.Payload), string(ev.Metadata), s.k.taskPrefix(), s.k.readyPrefix(),
		s.k.reservedPrefix(), s.k.channel()).Result()
	if err != nil {
		return nil, fmt.Errorf("claim for %s: %w", p.WorkerID, s.redisErr(err))
	}
	if code, ok := res.(int64); ok && code < 0 {
		return nil, fmt.Errorf("claim: %w", &store.WorkerNotFoundError{ID: p.WorkerID})
	}
	rows, _ := res.([]any)
	if len(rows) == 0 {
		return nil, fmt.Errorf("claim for %s: unexpected reply %v", p.WorkerID, res)
	}
	seq, _ := rows[0].(int64)
	rows = rows[1:]
	if len(rows) > 0 {
		s.noted(seq, false)
	}
	tasks := make([]*taskwire.Task, 0, len(rows))
	for _, row := range rows {
		t, err := taskFromHash(pairs(row))
		if err != nil {
			return nil, fmt.Errorf("claim for %s: %w", p.WorkerID, err)
		}
		tasks = append(tasks, t.Task)
	}
	return tasks, nil
}

// pairs turns a flat HGETALL reply into a map.
func pairs(reply any) map[string]string {
	flat, _ := reply.([]any)
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return m
}

package redispg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// CompleteTask finalizes a task by the rules of store.CompleteTaskParams.
// The outcome and result are staged in PostgreSQL under the task's
// attempt first (a PostgreSQL failure then changes nothing), then the
// Redis transition commits the completion; the task row follows through
// the outbox, and the reconciler finalizes from the staged outcome should
// Redis be lost before. A retried completion is recognized by the
// result's checksum, without reading the result back.
func (s *Store) CompleteTask(ctx context.Context, p store.CompleteTaskParams) (*taskwire.Task, error) {
	status, result, errText := taskwire.StatusCompleted, []byte(p.Result), ""
	if p.Failed {
		status, result, errText = taskwire.StatusFailed, nil, p.Error
	}
	sum := resultSum(result)
	now := truncMs(p.Now)
	staged := -1 // the attempt whose outcome is staged
	done := now  // its completion time; a retry's is the first try's
	var task *taskwire.Task
	err := retry(ctx, func() error {
		before, err := s.liveTask(ctx, p.ID)
		if err != nil {
			return err
		}
		same := before.Status == status && before.Error == errText && before.sum == sum &&
			before.ResultSize == int64(len(result))
		again, err := store.CheckCompletion(before.Task, before.completedBy, same, p)
		if err != nil {
			return err
		}
		if again {
			task = before.Task // a retry of the completion that succeeded
			return nil
		}
		r := before.clone()
		r.finalize(status, errText, int64(len(result)), sum, p.WorkerID, done)
		if staged != r.Attempt {
			if err := s.stageResult(ctx, before, r, result); err != nil {
				return err
			}
			staged, done = r.Attempt, r.CompletedAt
		}
		x := s.txn()
		x.saveTask(before, r, now)
		x.touchWorker(p.WorkerID, now)
		x.emit(store.TaskCompletedEvent(r.Task, store.CompletedBy(p.WorkerID, p.By)))
		if err := s.apply(ctx, x); err != nil {
			return err
		}
		task = r.Task
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete task %s: %w", p.ID, err)
	}
	return task, nil
}

// resultSum is the checksum kept next to a result: hex SHA-256, "" for
// no result.
func resultSum(result []byte) string {
	if len(result) == 0 {
		return ""
	}
	s := sha256.Sum256(result)
	return hex.EncodeToString(s[:])
}

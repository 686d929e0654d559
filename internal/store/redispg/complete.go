package redispg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
func (s *Store) CompleteTask(ctx context.Context, p store.CompleteTaskParams) (task *taskwire.Task, finalized bool, err error) {
	status, result, errText := taskwire.StatusCompleted, []byte(p.Result), ""
	if p.Failed {
		status, result, errText = taskwire.StatusFailed, nil, p.Error
	}
	sum := resultSum(result)
	now := truncMs(p.Now)
	staged := -1     // the attempt whose outcome is staged
	done := now      // its completion time; a retry's is the first try's
	unsure := false  // a transition of ours may have committed
	refused := false // a fresh read of the task refused the completion
	err = retry(ctx, func() error {
		before, err := s.liveTask(ctx, p.ID)
		if err != nil {
			return err
		}
		same := before.Status == status && before.Error == errText && before.sum == sum &&
			before.ResultSize == int64(len(result))
		again, err := store.CheckCompletion(before.Task, before.completedBy, same, p)
		if err != nil {
			refused = true
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
			unsure = unsure || !errors.Is(err, errRaced)
			return err
		}
		task, finalized = r.Task, true
		return nil
	})
	if err != nil {
		if staged >= 0 && !unsure && refused {
			// Refused by the task's state, read afresh, and no transition
			// of ours committed: the outcome staged is no completion's,
			// and the reconciler must not finalize the task from it. A
			// call that ended otherwise (lost races, then a failed read
			// or the caller gone) leaves it: an identical call may have
			// committed that very outcome.
			s.unstage(context.WithoutCancel(ctx), p.ID, staged, status, errText, sum, p.WorkerID)
		}
		return nil, false, fmt.Errorf("complete task %s: %w", p.ID, err)
	}
	return task, finalized, nil
}

// unstage deletes the outcome staged under attempt of task id, and its
// result, when it is the one given: that of a completion the task's
// current state refuses. (Another call staging the same outcome shares
// the row, but could only commit it from a state that allowed it, older
// than the one that refused this call: its transition fails the version
// check.)
func (s *Store) unstage(ctx context.Context, id string, attempt int, status taskwire.Status, errText, sum, by string) {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM staged_results WHERE task_id = $1 AND attempt = $2 AND status = $3
		AND error IS NOT DISTINCT FROM $4 AND sum IS NOT DISTINCT FROM $5 AND completed_by IS NOT DISTINCT FROM $6`,
		id, attempt, string(status), nullStr(errText), nullStr(sum), nullStr(by))
	b.Queue(`DELETE FROM results WHERE task_id = $1 AND attempt = $2
		AND NOT EXISTS (SELECT 1 FROM staged_results WHERE task_id = $1 AND attempt = $2)`, id, attempt)
	err := s.bounded(ctx, func(ctx context.Context) error { return s.pg.SendBatch(ctx, b).Close() })
	if err != nil {
		s.log.Warn("take back the outcome of a refused completion", "task", id, "attempt", attempt, "err", err)
	}
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

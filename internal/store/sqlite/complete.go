package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// CompleteTask finalizes a task by the rules of store.CompleteTaskParams.
// The result's checksum is computed before the call reaches the writer, and
// a retried completion is recognized by comparing checksums, so neither
// reads the stored result back.
func (s *Store) CompleteTask(ctx context.Context, p store.CompleteTaskParams) (task *taskwire.Task, finalized bool, err error) {
	status, result, errText := taskwire.StatusCompleted, []byte(p.Result), ""
	if p.Failed {
		status, result, errText = taskwire.StatusFailed, nil, p.Error
	}
	sum := resultSum(result)
	now := truncMs(p.Now)
	err = s.w.do(ctx, func(tx *writeTx) error {
		r, err := getTask(tx, p.ID)
		if err != nil {
			return err
		}
		same := r.Status == status && r.Error == errText && bytes.Equal(r.sum, sum) && r.ResultSize == int64(len(result))
		again, err := store.CheckCompletion(r.Task, r.completedBy, same, p)
		if err != nil {
			return err
		}
		if again {
			task = r.Task // a retry of the completion that succeeded
			return nil
		}
		if err := finalize(tx, r, status, errText, result, sum, p.WorkerID, now); err != nil {
			return err
		}
		if err := saveTask(tx, r); err != nil {
			return err
		}
		tx.touchWorker(p.WorkerID, now)
		task, finalized = r.Task, true
		tx.appendEvent(store.TaskCompletedEvent(r.Task, store.CompletedBy(p.WorkerID, p.By)))
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("complete task %s: %w", p.ID, err)
	}
	return task, finalized, nil
}

// finalize makes r completed (storing result) or failed (with errText,
// result empty), by worker by ("" for an admin), at now. The caller saves r.
func finalize(tx *writeTx, r *taskRow, status taskwire.Status, errText string, result, sum []byte, by string, now time.Time) error {
	if err := writeResult(tx, r.ID, result); err != nil {
		return err
	}
	r.Status, r.Error, r.ResultSize, r.sum, r.completedBy = status, errText, int64(len(result)), sum, by
	r.LeaseExpiresAt, r.CompletedAt, r.UpdatedAt = time.Time{}, now, now
	r.DurationMs = now.Sub(r.CreatedAt).Milliseconds()
	return nil
}

// resultSum is the checksum stored next to a result.
func resultSum(result []byte) []byte {
	s := sha256.Sum256(result)
	return s[:]
}

package store

import (
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
)

// Rules of the task life cycle that every backend applies the same way,
// inside its own atomic step.

// Conflict reports that t's state does not allow an operation; the reason
// is format and args.
func Conflict(t *taskwire.Task, format string, args ...any) *ConflictError {
	return &ConflictError{TaskID: t.ID, Status: t.Status, AssignedTo: t.AssignedTo,
		Reason: fmt.Sprintf(format, args...)}
}

// HeldBy checks that t is in_progress and assigned to worker: what a
// worker's own update requires (a *ConflictError otherwise).
func HeldBy(t *taskwire.Task, worker string) error {
	switch {
	case t.AssignedTo != worker && t.AssignedTo != "":
		return Conflict(t, "assigned to %s", t.AssignedTo)
	case t.AssignedTo != worker:
		return Conflict(t, "task is not assigned")
	case t.Status != taskwire.StatusInProgress:
		return Conflict(t, "task is %s", t.Status)
	}
	return nil
}

// CompletedBy is who a task.completed event names: the worker when there
// is one, else the caller.
func CompletedBy(workerID, by string) string {
	if workerID != "" {
		return workerID
	}
	return by
}

// StatusChangeEvent is the event of task.update's status change to, from
// the task before the update to after: task.requeued when a held,
// reserved or final task goes back to pending, task.completed when it is
// finalized; ok is false when the change calls for no event.
func StatusChangeEvent(before, after *taskwire.Task, to taskwire.Status, p UpdateTaskParams, now time.Time) (ev taskwire.Event, ok bool) {
	switch to {
	case taskwire.StatusPending:
		if before.Status == taskwire.StatusPending && before.AssignedTo == "" {
			return ev, false
		}
		return TaskRequeuedEvent(after.ID, before.AssignedTo, after.Attempt, RequeueUpdate, p.By, now), true
	case taskwire.StatusCompleted, taskwire.StatusFailed:
		return TaskCompletedEvent(after, CompletedBy(p.WorkerID, p.By)), true
	}
	return ev, false
}

// PendingTask is t as CreateTask stores it: pending, unassigned, without
// outcome, its times at millisecond precision, a null metadata left out.
func PendingTask(t taskwire.Task) taskwire.Task {
	t.Status, t.AssignedTo, t.Attempt, t.LeaseExpiresAt = taskwire.StatusPending, "", 0, time.Time{}
	t.Error, t.Result, t.ResultSize, t.ResultTruncated = "", nil, 0, false
	t.CompletedAt, t.DurationMs = time.Time{}, 0
	t.RunAt, t.CreatedAt, t.UpdatedAt = TruncMs(t.RunAt), TruncMs(t.CreatedAt), TruncMs(t.UpdatedAt)
	if len(t.Metadata) == 0 || string(t.Metadata) == "null" {
		t.Metadata = nil
	}
	return t
}

// TruncMs is t in UTC at millisecond precision, as every backend keeps
// times; the zero time stays zero.
func TruncMs(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

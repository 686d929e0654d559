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

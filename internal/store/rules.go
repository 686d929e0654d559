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
		return otherWorker(t)
	case t.AssignedTo != worker:
		return Conflict(t, "task is not assigned")
	case t.Status != taskwire.StatusInProgress:
		return Conflict(t, "task is %s", t.Status)
	}
	return nil
}

// CheckCompletion applies the rules of CompleteTaskParams to t, whose
// completion, when it is final, was by completedBy with an outcome that
// sameOutcome says equals the one p asks for (status, error and result).
// It reports again when p repeats the completion that finalized t (the
// same worker, outcome and attempt: answered as the first call was), a
// *ConflictError when t may not be completed by p, and neither when it may.
func CheckCompletion(t *taskwire.Task, completedBy string, sameOutcome bool, p CompleteTaskParams) (again bool, err error) {
	if t.Status.Final() {
		if sameOutcome && completedBy == p.WorkerID && (p.Attempt == nil || *p.Attempt == t.Attempt) {
			return true, nil
		}
		return false, Conflict(t, "task is %s", t.Status)
	}
	switch {
	case p.Attempt != nil && *p.Attempt != t.Attempt:
		return false, Conflict(t, "stale attempt %d, current %d", *p.Attempt, t.Attempt)
	case t.AssignedTo == "":
		return false, Conflict(t, "task is not assigned")
	case p.WorkerID != "" && p.WorkerID != t.AssignedTo:
		return false, otherWorker(t)
	}
	return false, nil
}

// otherWorker is the conflict of a worker acting on a task t that another
// worker holds or has reserved.
func otherWorker(t *taskwire.Task) *ConflictError {
	e := Conflict(t, "assigned to %s", t.AssignedTo)
	e.OtherWorker = true
	return e
}

// CheckAssign applies the rules of AssignTask to t for worker: again when
// t is already reserved for worker (nothing changes), a *ConflictError
// when t is not pending or is reserved for another worker.
func CheckAssign(t *taskwire.Task, worker string) (again bool, err error) {
	switch {
	case t.Status != taskwire.StatusPending:
		return false, Conflict(t, "task is %s", t.Status)
	case t.AssignedTo == worker:
		return true, nil
	case t.AssignedTo != "":
		return false, Conflict(t, "assigned to %s", t.AssignedTo)
	}
	return false, nil
}

// LastAttemptError is the error of a task failed on its last attempt
// because its worker lost it, for reason (RequeueLeaseExpired,
// RequeueWorkerOffline, RequeueUnregistered): "<reason> after N attempts".
func LastAttemptError(reason string, attempt int) string {
	return fmt.Sprintf("%s after %d attempts", reason, attempt)
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

// PageTotal is the total ListTasks reports for a page of rows rows read
// from offset, given whether a matching row followed the page when it was
// read (more: the backend reads one row past the limit) and counted, the
// number of matching tasks found apart from the page (kept counts, or a
// count that may see other writes than the page did). A page that ends
// the list has its exact total, offset+rows; a page with more after it
// has at least offset+rows+1; an empty page says nothing beyond offset.
func PageTotal(offset, rows int, more bool, counted int) int {
	offset = max(offset, 0)
	switch {
	case more:
		return max(counted, offset+rows+1)
	case rows > 0:
		return offset + rows
	default:
		return min(counted, offset)
	}
}

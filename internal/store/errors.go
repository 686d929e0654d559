package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/taskwire/taskwire"
)

// Sentinels every backend's errors match with errors.Is.
var (
	// ErrNotFound matches *TaskNotFoundError and *WorkerNotFoundError.
	ErrNotFound = errors.New("not found")
	// ErrConflict matches *ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: a value over its limit (merged metadata).
	ErrTooLarge = errors.New("too large")
	// ErrNoResult: the task has no stored result yet.
	ErrNoResult = errors.New("no result")
	// ErrUnavailable: the backend cannot be reached; the call may be retried.
	ErrUnavailable = errors.New("backend unavailable")
)

// TaskNotFoundError reports a task id that does not exist.
type TaskNotFoundError struct{ ID string }

func (e *TaskNotFoundError) Error() string { return "task not found: " + e.ID }

// Is makes the error match ErrNotFound.
func (e *TaskNotFoundError) Is(target error) bool { return target == ErrNotFound }

// WorkerNotFoundError reports a worker that is not registered, or offline.
type WorkerNotFoundError struct{ ID string }

func (e *WorkerNotFoundError) Error() string { return "worker not registered: " + e.ID }

// Is makes the error match ErrNotFound.
func (e *WorkerNotFoundError) Is(target error) bool { return target == ErrNotFound }

// ConflictError reports a task whose state does not allow the operation.
type ConflictError struct {
	TaskID     string
	Status     taskwire.Status
	AssignedTo string
	// Reason says in words what is in the way ("task is completed",
	// "assigned to w2", "stale attempt 1, current 2").
	Reason string
	// OtherWorker is set when all that is in the way is that another
	// worker than the one acting holds the task, or has it reserved: the
	// refusal a worker's token gets as not allowed (-32002) rather than as
	// a conflict.
	OtherWorker bool
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("task %s: %s", e.TaskID, e.Reason)
}

// Is makes the error match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// UnavailableError reports a backend that cannot be reached; the call
// changed nothing and may be retried after RetryAfter.
type UnavailableError struct {
	Backend    string
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s unavailable: %v", e.Backend, e.Err)
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes the error match ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

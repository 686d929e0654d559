// Package store defines the storage contract of taskwire: the Store
// interface every backend implements, the params of its operations and the
// errors it answers with. The rules of the task life cycle live here and in
// the conformance suite (storetest), not in the backends' callers: every
// transition is decided atomically inside the backend.
//
// A Store never reads a clock: every operation that depends on time carries
// Now, so tests drive time and every backend agrees on it.
package store

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/taskwire/taskwire"
)

// Store is a task storage backend. Every method is safe for concurrent use.
// A method that returns without error has made its change durable.
//
// Every change a method makes is written to the event log (Lifecycle) in
// the same transaction, as the events of the builders in events.go: a
// committed change always has its events, a method that fails writes
// none, and so does one that changes nothing (a repeated idempotent
// create, a retried completion, an assignment repeated, a claim that
// finds nothing, a heartbeat). The events of one call are consecutive in
// the log; their order among themselves is left to the backend.
type Store interface {
	Lifecycle

	// CreateTask inserts p.Task as a pending task (event task.created).
	// When p.IdempotencyKey was used by a task created after
	// p.Now - p.IdempotencyWindow, it returns that task with created false
	// and changes nothing, also when two such calls race.
	CreateTask(ctx context.Context, p CreateTaskParams) (task *taskwire.Task, created bool, err error)

	// GetTask returns a task with its whole result, or a *TaskNotFoundError.
	GetTask(ctx context.Context, id string) (*taskwire.Task, error)

	// ListTasks returns one page of the tasks matching p and the number of
	// all matching tasks. The total agrees with the page even while writes
	// run (see PageTotal): it is never below Offset+len(tasks) when the
	// page has rows, and it is above Offset+len(tasks) exactly when more
	// matching tasks follow the page, so that a caller paging until the
	// total is reached stops neither early nor late. Results over
	// taskwire.ListResultLimit bytes are left out of the rows (Result nil,
	// ResultTruncated true, ResultSize set).
	ListTasks(ctx context.Context, p ListTasksParams) (tasks []*taskwire.Task, total int, err error)

	// ClaimTasks atomically takes up to p.MaxTasks ready tasks for a
	// registered, online worker: first the pending tasks reserved for it
	// (task.assign, any queue), then unreserved pending tasks of p.Queues
	// whose RunAt has come, highest priority first, oldest first within a
	// priority (CreatedAt, then ID). Each becomes in_progress, assigned to
	// the worker, with Attempt+1 and a lease of its LeaseMs. No task is
	// handed to two workers. An empty p.Queues means the worker's
	// registered queues, or the default queue when it registered none. An
	// unknown or offline worker gets a *WorkerNotFoundError. No ready task:
	// an empty slice. Each claimed task has its event task.claimed. A claim
	// is a sign of life: the worker's LastSeen becomes p.Now, as do a
	// successful CompleteTask and UpdateTask that name the worker
	// (WorkerID).
	ClaimTasks(ctx context.Context, p ClaimTasksParams) ([]*taskwire.Task, error)

	// UpdateTask changes the given fields of a task (see UpdateTaskParams
	// for the rules) and returns it without its result. Event task.updated,
	// its changes naming the fields whose value changed (ChangedFields);
	// a status change that requeues the task adds task.requeued, one that
	// finalizes it adds task.completed.
	UpdateTask(ctx context.Context, p UpdateTaskParams) (*taskwire.Task, error)

	// CompleteTask finalizes an assigned pending or in_progress task as
	// completed (with p.Result) or failed (with p.Error) and returns it
	// without its result (event task.completed). finalized is true when
	// this call finalized the task, false when it repeated a completion
	// that already had (and changed nothing); of identical calls racing,
	// one finalizes. See CompleteTaskParams for the rules.
	CompleteTask(ctx context.Context, p CompleteTaskParams) (task *taskwire.Task, finalized bool, err error)

	// AssignTask reserves a pending task for a registered worker (event
	// task.assigned); a worker that is unknown or offline is a
	// *WorkerNotFoundError, as for a claim. Assigning it again to the same
	// worker changes nothing; a task that is not pending, or is reserved
	// for another worker, is a *ConflictError.
	AssignTask(ctx context.Context, p AssignTaskParams) (*taskwire.Task, error)

	// UnassignTask clears a task's assignment; an in_progress task goes
	// back to pending (its attempt kept, its lease cleared). Event
	// task.unassigned, none when there was no assignment to clear. It
	// returns the previous assignment ("" when there was none). A final
	// task is a *ConflictError.
	UnassignTask(ctx context.Context, p UnassignTaskParams) (previous string, task *taskwire.Task, err error)

	// DeleteTask removes a task, its result and every trace of it (event
	// task.deleted; the events of its past stay in the log).
	DeleteTask(ctx context.Context, p DeleteTaskParams) error

	// RegisterWorker creates or refreshes a worker; it is online afterwards,
	// also when a sweep had marked it offline (event worker.registered).
	RegisterWorker(ctx context.Context, p RegisterWorkerParams) error

	// HeartbeatWorker records that a worker is alive and renews the leases
	// of all its in_progress tasks; it writes no event. It reports false,
	// changing nothing, for a worker that went offline (it must register
	// again); an unknown worker is a *WorkerNotFoundError.
	HeartbeatWorker(ctx context.Context, p HeartbeatWorkerParams) (alive bool, err error)

	// UnregisterWorker removes a worker (event worker.unregistered). Its
	// in_progress tasks go back to pending at once, attempt kept (event
	// task.requeued each), but for those on their last attempt (Attempt >=
	// MaxAttempts), which fail as when their lease expires, with error
	// "worker unregistered after N attempts" (event task.completed, by By;
	// the task keeps its assignment, as every final task does). Its
	// reservations are cleared (event task.unassigned each). It returns how
	// many in_progress tasks went back to pending.
	UnregisterWorker(ctx context.Context, p UnregisterWorkerParams) (requeued int, err error)

	// ListWorkers returns every registered worker, ordered by id, with the
	// ids of its in_progress tasks oldest first (CreatedAt, then ID).
	ListWorkers(ctx context.Context) ([]taskwire.Worker, error)

	// Stats counts tasks by queue and status and finds, as of now, when
	// each queue's oldest ready pending task became ready.
	Stats(ctx context.Context, now time.Time) (*Stats, error)

	// OpenResult streams the stored result of a task. A task without a
	// stored result (not final yet) is ErrNoResult.
	OpenResult(ctx context.Context, id string) (r io.ReadCloser, size int64, err error)
	// ResultSize is the size in bytes of the stored result of a task,
	// read without the result; errors as OpenResult's.
	ResultSize(ctx context.Context, id string) (int64, error)

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error

	// Close releases the backend. Operations after Close fail.
	Close() error
}

// CreateTaskParams are the params of Store.CreateTask.
type CreateTaskParams struct {
	// Task is the new task, its ID, Queue, Text, Priority, Metadata,
	// MaxAttempts, LeaseMs, RunAt, CreatedAt and UpdatedAt set; its Status
	// is pending.
	Task taskwire.Task
	// IdempotencyKey, when not empty, makes the create happen at most once
	// within IdempotencyWindow.
	IdempotencyKey    string
	IdempotencyWindow time.Duration
	// By is who creates the task: the caller's principal, or SystemActor.
	// It is written into the metadata of its event (createdBy).
	By  string
	Now time.Time
}

// ClaimTasksParams are the params of Store.ClaimTasks.
type ClaimTasksParams struct {
	WorkerID string
	// Queues to take unreserved tasks from; empty means the worker's own.
	Queues   []string
	MaxTasks int
	Now      time.Time
}

// UpdateTaskParams are the params of Store.UpdateTask.
//
// Rules: a stale Attempt (not the task's current one) is a *ConflictError.
// With WorkerID set the caller acts as that worker: the task must be
// in_progress and assigned to it (else *ConflictError), and the update
// renews the task's lease. A status change to pending requeues the task
// (assignment and lease cleared; from a final state it is a re-run and the
// result, error and completion are cleared too); to completed or failed it
// finalizes the task as CompleteTask does; to in_progress it is allowed only
// when the task is already in_progress. Metadata is merged key by key (a key
// set to null is removed); a merged object whose compact encoding
// (taskwire.FitJSON) is over taskwire.MaxMetadataBytes is ErrTooLarge.
type UpdateTaskParams struct {
	ID       string
	Updates  taskwire.TaskUpdates
	WorkerID string
	Attempt  *int
	// By is who makes the update: the caller's principal, or SystemActor.
	// It is written into the metadata of its events (updatedBy, and
	// requeuedBy or completedBy as for CompleteTaskParams.By).
	By  string
	Now time.Time
}

// CompleteTaskParams are the params of Store.CompleteTask.
//
// Rules: the task must exist (*TaskNotFoundError), be pending or in_progress
// and assigned (*ConflictError otherwise); with WorkerID set it must be the
// assigned worker, and with Attempt set it must be the current attempt
// (*ConflictError otherwise, nothing changed). A call repeating a
// completion that already succeeded, by the same worker with the same
// outcome (status, error, result), returns the task as the first call left
// it, with finalized false. DurationMs becomes CompletedAt - CreatedAt.
type CompleteTaskParams struct {
	ID       string
	WorkerID string
	// Failed selects status failed with Error; otherwise completed with Result.
	Failed  bool
	Error   string
	Result  json.RawMessage
	Attempt *int
	// By is who completes the task: the caller's principal, or
	// SystemActor. The event's completedBy is WorkerID when set, else By.
	By  string
	Now time.Time
}

// AssignTaskParams are the params of Store.AssignTask.
type AssignTaskParams struct {
	TaskID   string
	WorkerID string
	// By is who assigns the task: the caller's principal, or SystemActor.
	// It is written into the metadata of its event (assignedBy).
	By  string
	Now time.Time
}

// UnassignTaskParams are the params of Store.UnassignTask.
type UnassignTaskParams struct {
	TaskID string
	// By is who unassigns the task: the caller's principal, or
	// SystemActor. It is written into the metadata of its event
	// (unassignedBy).
	By  string
	Now time.Time
}

// DeleteTaskParams are the params of Store.DeleteTask.
type DeleteTaskParams struct {
	ID string
	// By is who deletes the task: the caller's principal, or SystemActor.
	// It is written into the metadata of its event (deletedBy).
	By  string
	Now time.Time
}

// RegisterWorkerParams are the params of Store.RegisterWorker.
type RegisterWorkerParams struct {
	ID       string
	Roles    []string
	Queues   []string
	Metadata json.RawMessage
	// By is who registers the worker: the caller's principal (the worker
	// itself without auth). It is written into the metadata of its event
	// (registeredBy).
	By  string
	Now time.Time
}

// HeartbeatWorkerParams are the params of Store.HeartbeatWorker.
type HeartbeatWorkerParams struct {
	ID  string
	Now time.Time
}

// UnregisterWorkerParams are the params of Store.UnregisterWorker.
type UnregisterWorkerParams struct {
	ID string
	// By is who unregisters the worker: the caller's principal. It is
	// written into the metadata of its events (unregisteredBy, and the
	// requeuedBy, completedBy and unassignedBy of the events of its
	// tasks).
	By  string
	Now time.Time
}

// ListTasksParams are the params of Store.ListTasks. Zero values filter
// nothing. Rows are ordered by OrderBy, then by id in the same direction.
type ListTasksParams struct {
	Status     taskwire.Status
	AssignedTo string
	Priority   *int
	Queue      string
	Limit      int
	Offset     int
	OrderBy    OrderBy
	Desc       bool
}

// OrderBy names the column task.list sorts on.
type OrderBy string

// The columns task.list may sort on.
const (
	OrderByCreatedAt   OrderBy = "createdAt"
	OrderByUpdatedAt   OrderBy = "updatedAt"
	OrderByPriority    OrderBy = "priority"
	OrderByStatus      OrderBy = "status"
	OrderByAssignedTo  OrderBy = "assignedTo"
	OrderByCompletedAt OrderBy = "completedAt"
)

// Stats are task counts as Store.Stats reports them.
type Stats struct {
	Queues []QueueStats
	// Workers counts registered workers by status.
	Workers map[taskwire.WorkerStatus]int
}

// QueueStats counts one queue's tasks by status.
type QueueStats struct {
	Queue    string
	ByStatus map[taskwire.Status]int
	// OldestPending is when the queue's longest-waiting ready pending task
	// became ready: the least max(CreatedAt, RunAt) of its pending tasks
	// whose RunAt is absent or not after now (reserved ones included);
	// zero when it has none. Delayed tasks not yet due do not count.
	OldestPending time.Time
}

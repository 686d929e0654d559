package store

import (
	"context"
	"time"

	"github.com/taskwire/taskwire"
)

// Lifecycle is the part of the Store contract that keeps tasks moving
// without a caller: expiring leases, detecting dead workers, and the event
// log every change is written to.
type Lifecycle interface {
	// Sweep, at p.Now: marks offline every online worker whose LastSeen is
	// at or before Now - WorkerTimeout (event worker.offline) and releases
	// its reservations (event task.unassigned); returns every in_progress
	// task of those workers, and every in_progress task whose
	// LeaseExpiresAt is at or before Now, to pending (assignment and lease
	// cleared, attempt kept, event task.requeued) — or, when Attempt >=
	// MaxAttempts, fails it with error "worker offline after N attempts"
	// when its worker is offline, else "lease expired after N attempts"
	// (event task.completed; the task keeps its assignment, as every final
	// task does). The events of a sweep are by SystemActor. It never
	// touches a final task. It also trims the event log from its oldest
	// end: the events older than Now - EventRetention and those beyond the
	// newest MaxEvents.
	//
	// A sweep does a bounded amount of work; when it stops short it says
	// so (SweepResult.More) and the caller sweeps again.
	Sweep(ctx context.Context, p SweepParams) (*SweepResult, error)

	// ReadEvents returns up to limit (> 0) events with an ID after after
	// ("" or "0" for the oldest the log holds), oldest first. An after that this
	// backend never issued is an error matching ErrNotFound; one that was
	// issued and dropped since resumes at the oldest event the log still
	// holds after it. IDs are consecutive integers in decimal, the first
	// 1 or more, but for runs a backend skips on purpose (SQLite after an
	// unclean stop, which it can tell a reader of; Redis after losing its
	// data): a reader tells from a jump that events may be missing.
	ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error)

	// TaskEvents returns the events of task taskID that the log still
	// holds, oldest first, at most limit (> 0): the oldest limit of them.
	// A task with none (unknown, or all its events trimmed) has an empty
	// slice, not an error. The events of a deleted task stay readable, as
	// the rest of the log, until the sweep trims them.
	TaskEvents(ctx context.Context, taskID string, limit int) ([]taskwire.Event, error)

	// EventsChanged returns a channel that is closed once events have been
	// appended (committed) after the call.
	EventsChanged() <-chan struct{}
}

// SweepParams are the params of Sweep. A zero WorkerTimeout,
// EventRetention or MaxEvents disables that part of the sweep.
type SweepParams struct {
	Now            time.Time
	WorkerTimeout  time.Duration
	EventRetention time.Duration
	MaxEvents      int
}

// SweepResult says what a sweep changed.
type SweepResult struct {
	WorkersOffline int
	Requeued       int
	Failed         int
	EventsDropped  int
	// NextRunAt is the earliest RunAt of a pending task still in the
	// future, zero when there is none: when the next delayed task is due.
	NextRunAt time.Time
	// More reports that the sweep stopped at its bound with work possibly
	// left: the caller sweeps again without waiting.
	More bool
}

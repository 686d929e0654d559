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
	// its reservations; returns every in_progress task of those workers,
	// and every in_progress task whose LeaseExpiresAt is at or before Now,
	// to pending (assignment and lease cleared, attempt kept, event
	// task.requeued) — or, when Attempt >= MaxAttempts, fails it with
	// error "lease expired after N attempts" (event task.completed). It
	// never touches a final task. It also drops events older than
	// Now - EventRetention and beyond the newest MaxEvents.
	Sweep(ctx context.Context, p SweepParams) (*SweepResult, error)

	// ReadEvents returns up to limit events with an ID after after ("" for
	// the oldest the log holds), oldest first. An after that this backend
	// never issued is an error.
	ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error)

	// EventsChanged returns a channel that is closed once events have been
	// appended (committed) after the call.
	EventsChanged() <-chan struct{}
}

// SweepParams are the params of Sweep.
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
}

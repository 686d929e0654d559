package store

import (
	"context"
	"time"
)

// Capabilities some backends have, asked of a Store by type assertion.

// ReadyNotifier is a backend shared by several processes: TasksReady
// returns a channel closed once a task may have become claimable after the
// call, through any process (created, requeued, unassigned), so that long
// polls everywhere wake.
type ReadyNotifier interface {
	TasksReady() <-chan struct{}
}

// BackendPinger is a backend made of several services: PingBackends
// reports, by service name, whether each answers (nil when it does).
type BackendPinger interface {
	PingBackends(ctx context.Context) map[string]error
}

// RateSharer is a backend shared by several processes: each adds the
// claims and completions it served (AddRates, counted in the second of
// now), and Rates sums those of every process over the 60 seconds before
// now, as per-second rates, for system.metrics.
type RateSharer interface {
	AddRates(ctx context.Context, now time.Time, claimed, completed uint64) error
	Rates(ctx context.Context, now time.Time) (claimed, completed float64, err error)
}

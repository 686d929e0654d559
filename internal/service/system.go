package service

import (
	"context"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// Health implements system.health: "ok" when the store answers a ping,
// else "degraded". A store of several services (store.BackendPinger)
// reports each by name.
func (s *Service) Health(ctx context.Context, _ *taskwire.NoParams) (*taskwire.HealthResult, error) {
	if err := s.limit(ctx, taskwire.MethodSystemHealth, ""); err != nil {
		return nil, err
	}
	r := &taskwire.HealthResult{Status: "ok", Backends: map[string]string{},
		Version: s.cfg.Version, UptimeMs: s.now().Sub(s.started).Milliseconds()}
	for name, err := range s.PingBackends(ctx) {
		r.Backends[name] = "ok"
		if err != nil {
			r.Status = "degraded"
			r.Backends[name] = "unavailable"
		}
	}
	return r, nil
}

// PingBackends asks every backend of the store whether it answers: the
// error of each by name (sqlite; redis and postgres), nil for those that
// do.
func (s *Service) PingBackends(ctx context.Context) map[string]error {
	if p, ok := s.store.(store.BackendPinger); ok {
		return p.PingBackends(ctx)
	}
	return map[string]error{s.cfg.Backend: s.store.Ping(ctx)}
}

// Metrics implements system.metrics: task counts by status and queue, the
// age of the oldest pending task, workers by status, and the claim and
// completion rates over the last minute (of every process sharing the
// store, see ratesPerSecond).
func (s *Service) Metrics(ctx context.Context, _ *taskwire.NoParams) (*taskwire.MetricsResult, error) {
	if err := s.limit(ctx, taskwire.MethodSystemMetrics, ""); err != nil {
		return nil, err
	}
	now := s.now()
	st, err := s.store.Stats(ctx, now)
	if err != nil {
		return nil, err
	}
	r := &taskwire.MetricsResult{ByStatus: map[taskwire.Status]int{},
		Queues: []taskwire.QueueCounts{}, Workers: st.Workers}
	for _, status := range []taskwire.Status{taskwire.StatusPending, taskwire.StatusInProgress,
		taskwire.StatusCompleted, taskwire.StatusFailed} {
		r.ByStatus[status] = 0
	}
	for _, q := range st.Queues {
		qc := taskwire.QueueCounts{Queue: q.Queue, ByStatus: q.ByStatus}
		if !q.OldestPending.IsZero() {
			qc.OldestAgeMs = max(now.Sub(q.OldestPending).Milliseconds(), 0)
			r.OldestPendingAgeMs = max(r.OldestPendingAgeMs, qc.OldestAgeMs)
		}
		for status, n := range q.ByStatus {
			r.ByStatus[status] += n
		}
		r.Queues = append(r.Queues, qc)
	}
	if r.Workers == nil {
		r.Workers = map[taskwire.WorkerStatus]int{}
	}
	r.ClaimRatePerSec, r.CompletionRatePerSec, err = s.ratesPerSecond(ctx, now)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ratesPerSecond is the claims and completions per second over the last
// minute: of every process sharing the store (store.RateSharer), those
// this process has not shared yet included, else of this process.
func (s *Service) ratesPerSecond(ctx context.Context, now time.Time) (claimed, completed float64, err error) {
	sharer, ok := s.store.(store.RateSharer)
	if !ok {
		claimed, completed = s.rates.perSecond(now)
		return claimed, completed, nil
	}
	if err := s.shareRates(ctx); err != nil {
		return 0, 0, err
	}
	return sharer.Rates(ctx, now)
}

package service

import (
	"context"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// Health implements system.health: "ok" when the store answers a ping,
// else "degraded". A store of several services (store.BackendPinger)
// reports each by name.
func (s *Service) Health(ctx context.Context, _ *taskwire.NoParams) (*taskwire.HealthResult, error) {
	r := &taskwire.HealthResult{Status: "ok", Backends: map[string]string{},
		Version: s.cfg.Version, UptimeMs: s.now().Sub(s.started).Milliseconds()}
	pings := map[string]error{s.cfg.Backend: nil}
	if p, ok := s.store.(store.BackendPinger); ok {
		pings = p.PingBackends(ctx)
	} else {
		pings[s.cfg.Backend] = s.store.Ping(ctx)
	}
	for name, err := range pings {
		r.Backends[name] = "ok"
		if err != nil {
			r.Status = "degraded"
			r.Backends[name] = "unavailable"
		}
	}
	return r, nil
}

// Metrics implements system.metrics: task counts by status and queue, the
// age of the oldest pending task, workers by status, and the claim and
// completion rates of this process over the last minute.
func (s *Service) Metrics(ctx context.Context, _ *taskwire.NoParams) (*taskwire.MetricsResult, error) {
	if err := s.limit(ctx, taskwire.MethodSystemMetrics, ""); err != nil {
		return nil, err
	}
	st, err := s.store.Stats(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
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
	r.ClaimRatePerSec, r.CompletionRatePerSec = s.rates.perSecond(now)
	return r, nil
}

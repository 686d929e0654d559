package service

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/taskwire/taskwire/internal/store"
)

// DefaultSweepInterval is how often the sweeper looks for silent workers
// and expired leases: a dead worker's tasks are back in the queue within
// the worker timeout plus this.
const DefaultSweepInterval = time.Second

// sweepWarnInterval is the least time between two warnings of failed
// sweeps (or of failed shares of the rates): an outage fails every one.
const sweepWarnInterval = 10 * time.Second

// RunSweeper sweeps every interval until ctx ends. A failed sweep is
// logged, at most once every sweepWarnInterval, and retried at the next
// tick.
func (s *Service) RunSweeper(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	sweepWarn := &rate.Sometimes{First: 1, Interval: sweepWarnInterval}
	shareWarn := &rate.Sometimes{First: 1, Interval: sweepWarnInterval}
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			sweepWarn.Do(func() { s.log.Warn("sweep", "err", err) })
		}
		if err := s.shareRates(ctx); err != nil && ctx.Err() == nil {
			shareWarn.Do(func() { s.log.Warn("share rates", "err", err) })
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sweep sweeps at the service's clock: workers silent for the worker
// timeout go offline, expired leases return their tasks to the queue (or
// fail them on their last attempt), old events are dropped. A store sweep
// that stops at its bound (SweepResult.More) having changed something is
// followed at once by another, so that everything due is swept now, not
// an interval later; the result adds up their counts. Waiting claims are
// woken when tasks came back, and again when the next delayed task is due.
func (s *Service) Sweep(ctx context.Context) (*store.SweepResult, error) {
	total := &store.SweepResult{}
	for {
		r, err := s.sweepOnce(ctx)
		if err != nil {
			return nil, err
		}
		total.WorkersOffline += r.WorkersOffline
		total.Requeued += r.Requeued
		total.Failed += r.Failed
		total.EventsDropped += r.EventsDropped
		total.NextRunAt, total.More = r.NextRunAt, r.More
		if !r.More || r.WorkersOffline+r.Requeued+r.Failed+r.EventsDropped == 0 {
			return total, nil // done, or no progress: the next interval tries again
		}
	}
}

// sweepOnce runs one store sweep, bounded by the store, and wakes the
// waiting claims it concerns.
func (s *Service) sweepOnce(ctx context.Context) (*store.SweepResult, error) {
	now := s.now()
	r, err := s.store.Sweep(ctx, store.SweepParams{
		Now: now, WorkerTimeout: s.cfg.WorkerTimeout,
		EventRetention: s.cfg.EventRetention, MaxEvents: s.cfg.MaxEvents,
	})
	if err != nil {
		return nil, err
	}
	if r.Requeued > 0 || r.WorkersOffline > 0 { // an offline worker's reservations are released
		s.ready.notify()
	}
	if !r.NextRunAt.IsZero() {
		s.ready.notifyAt(r.NextRunAt.Sub(now))
	}
	return r, nil
}

// shareRates adds the claims and completions this process served since
// the last call to a store shared by several processes
// (store.RateSharer), so that system.metrics in any of them counts them;
// counts that fail to reach it are kept for the next call.
func (s *Service) shareRates(ctx context.Context) error {
	sharer, ok := s.store.(store.RateSharer)
	if !ok {
		return nil
	}
	claimed, completed := s.rates.takeUnshared()
	if claimed == 0 && completed == 0 {
		return nil
	}
	if err := sharer.AddRates(ctx, s.now(), claimed, completed); err != nil {
		s.rates.unshare(claimed, completed)
		return err
	}
	return nil
}

package service

import (
	"context"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// RegisterWorker implements system.register.
func (s *Service) RegisterWorker(ctx context.Context, p *taskwire.RegisterParams) (*taskwire.RegisterResult, error) {
	id := p.Worker()
	if err := s.limit(ctx, taskwire.MethodSystemRegister, id); err != nil {
		return nil, err
	}
	if err := s.store.RegisterWorker(ctx, store.RegisterWorkerParams{
		ID: id, Roles: p.Roles, Queues: p.Queues,
		Metadata: nullToNil(p.Metadata), By: principal(ctx, id), Now: s.now(),
	}); err != nil {
		return nil, err
	}
	timeout := s.cfg.WorkerTimeout.Milliseconds()
	return &taskwire.RegisterResult{Registered: true,
		HeartbeatIntervalMs: timeout / 3, TimeoutMs: timeout}, nil
}

// Heartbeat implements system.heartbeat.
func (s *Service) Heartbeat(ctx context.Context, p *taskwire.HeartbeatParams) (*taskwire.HeartbeatResult, error) {
	id := p.Worker()
	if err := s.limit(ctx, taskwire.MethodSystemHeartbeat, id); err != nil {
		return nil, err
	}
	alive, err := s.store.HeartbeatWorker(ctx, store.HeartbeatWorkerParams{ID: id, Now: s.now()})
	if err != nil {
		return nil, err
	}
	return &taskwire.HeartbeatResult{Alive: alive}, nil
}

// UnregisterWorker implements system.unregister.
func (s *Service) UnregisterWorker(ctx context.Context, p *taskwire.UnregisterParams) (*taskwire.UnregisterResult, error) {
	id := p.Worker()
	if err := s.limit(ctx, taskwire.MethodSystemUnregister, id); err != nil {
		return nil, err
	}
	n, err := s.store.UnregisterWorker(ctx, store.UnregisterWorkerParams{ID: id, By: principal(ctx, id), Now: s.now()})
	if err != nil {
		return nil, err
	}
	s.ready.notify()
	return &taskwire.UnregisterResult{Unregistered: true, Requeued: n}, nil
}

// Workers implements system.workers.
func (s *Service) Workers(ctx context.Context, _ *taskwire.NoParams) (*taskwire.WorkersResult, error) {
	if err := s.limit(ctx, taskwire.MethodSystemWorkers, ""); err != nil {
		return nil, err
	}
	ws, err := s.store.ListWorkers(ctx)
	if err != nil {
		return nil, err
	}
	if ws == nil {
		ws = []taskwire.Worker{}
	}
	return &taskwire.WorkersResult{Workers: ws}, nil
}

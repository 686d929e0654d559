// Package service holds taskwire's business rules above the store:
// validation that needs the contract's defaults, rate limits, long-poll
// claims, ids and clocks, and the counters behind system.metrics. Every
// transport (JSON-RPC over HTTP, later WebSocket) calls the same Service.
package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/store"
)

// Config tunes a Service. Zero values take the documented defaults.
type Config struct {
	// WorkerTimeout is how long a worker may stay silent before it goes
	// offline (default 30s).
	WorkerTimeout time.Duration
	// RateLimits per method; nil means DefaultRateLimits. A method absent
	// from the map, or with N == 0, is unlimited.
	RateLimits map[string]Limit
	// Limiter, when set, enforces RateLimits instead of the in-process
	// token buckets: a limiter shared by every process (distributed mode)
	// is built on the same limits.
	Limiter Limiter
	// AuthRequired makes every call carry a principal (WithPrincipal) and
	// checks its role; a call without one is refused. When false, auth is
	// off and every caller is an admin.
	AuthRequired bool
	// MaxWaitingClaims bounds the long-poll claims one worker may have
	// waiting at once (default DefaultMaxWaitingClaims).
	MaxWaitingClaims int
	// IdempotencyWindow is how long an idempotency key is remembered
	// (default 24h).
	IdempotencyWindow time.Duration
	// EventRetention and MaxEvents bound the event log: events older than
	// EventRetention (default 24h) or beyond the newest MaxEvents (default
	// 1,000,000) are dropped by the sweeper.
	EventRetention time.Duration
	MaxEvents      int
	// ResultBudget bounds the bytes of large results task.get answers hold
	// in memory at once, from the read until the answer is written
	// (default DefaultResultBudget); see reserveResult.
	ResultBudget int64
	// Backend names the store in system.health ("sqlite").
	Backend string
	// Version is reported by system.health.
	Version string
	// Now is the clock (default time.Now); tests inject a fake one.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service implements every JSON-RPC method of the contract on a store.
type Service struct {
	store   store.Store
	cfg     Config
	now     func() time.Time
	started time.Time
	ids     *idSource
	limiter Limiter
	ready   *readySignal
	rates   *rates
	waiters *waiters
	// results is the budget of large results being answered (ResultBudget).
	results *semaphore.Weighted
	log     *slog.Logger
	// draining is closed by Drain: waiting claims return at once.
	draining chan struct{}
	drainOne sync.Once
}

// New returns a Service over st.
func New(st store.Store, cfg Config) *Service {
	if cfg.WorkerTimeout <= 0 {
		cfg.WorkerTimeout = 30 * time.Second
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = DefaultRateLimits()
	}
	if cfg.ResultBudget <= 0 {
		cfg.ResultBudget = DefaultResultBudget
	}
	if cfg.MaxWaitingClaims <= 0 {
		cfg.MaxWaitingClaims = DefaultMaxWaitingClaims
	}
	if cfg.IdempotencyWindow <= 0 {
		cfg.IdempotencyWindow = 24 * time.Hour
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = 24 * time.Hour
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	now := func() time.Time { return cfg.Now().UTC().Truncate(time.Millisecond) }
	if cfg.Limiter == nil {
		cfg.Limiter = NewMemoryLimiter(cfg.RateLimits, now)
	}
	return &Service{
		store:    st,
		cfg:      cfg,
		now:      now,
		started:  now(),
		ids:      newIDSource(),
		limiter:  cfg.Limiter,
		ready:    newReadySignal(),
		rates:    newRates(),
		waiters:  newWaiters(cfg.MaxWaitingClaims),
		results:  semaphore.NewWeighted(cfg.ResultBudget),
		log:      cfg.Logger,
		draining: make(chan struct{}),
	}
}

// Drain makes every waiting long-poll claim return {claimed: false} now and
// every later one return without waiting, so that a server shutting down
// finishes its in-flight requests promptly.
func (s *Service) Drain() { s.drainOne.Do(func() { close(s.draining) }) }

// Rates returns the claim and completion counters of this process, for
// the Prometheus collector.
func (s *Service) Rates() (claimed, completed uint64) { return s.rates.totals() }

// Store returns the store the service runs on.
func (s *Service) Store() store.Store { return s.store }

// Caller describes who makes a call, for roles, rate limits and audit.
type Caller struct {
	// Name is the principal's token name, empty without auth.
	Name string
	// Addr is the client's network address.
	Addr string
	// Role is the token's role; empty without auth (with auth off every
	// caller is an admin; with auth on a caller without a role may do
	// nothing).
	Role auth.Role
	// WorkerID binds a worker-role caller to its worker.
	WorkerID string
}

// WithPrincipal returns ctx carrying the caller authenticated as p from
// the network address addr. Every transport that authenticates a token
// (the Authorization header of HTTP, the first message of a WebSocket)
// passes the ctx it returns to the service's methods.
func WithPrincipal(ctx context.Context, p auth.Principal, addr string) context.Context {
	return WithCaller(ctx, Caller{Name: p.Name, Addr: addr, Role: p.Role, WorkerID: p.WorkerID})
}

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries (zero when none).
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

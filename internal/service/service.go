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
	// IdempotencyWindow is how long an idempotency key is remembered
	// (default 24h).
	IdempotencyWindow time.Duration
	// EventRetention and MaxEvents bound the event log: events older than
	// EventRetention (default 24h) or beyond the newest MaxEvents (default
	// 1,000,000) are dropped by the sweeper.
	EventRetention time.Duration
	MaxEvents      int
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
	limiter *limiter
	ready   *readySignal
	rates   *rates
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
	return &Service{
		store:    st,
		cfg:      cfg,
		now:      now,
		started:  now(),
		ids:      newIDSource(),
		limiter:  newLimiter(cfg.RateLimits),
		ready:    newReadySignal(),
		rates:    newRates(),
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

// Caller describes who makes a call, for rate limits and audit.
type Caller struct {
	// Name is the principal's token name, empty without auth.
	Name string
	// Addr is the client's network address.
	Addr string
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

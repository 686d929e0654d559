// Package server assembles taskwire's HTTP surface: JSON-RPC on /rpc, the
// result stream, health, readiness and Prometheus metrics, over a Service
// and its store. cmd/taskwire runs it; tests start it in-process.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/events"
	"github.com/taskwire/taskwire/internal/redislimit"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store"
	"github.com/taskwire/taskwire/internal/store/redispg"
	"github.com/taskwire/taskwire/internal/store/sqlite"
	"github.com/taskwire/taskwire/internal/ws"
)

// Config configures a server: embedded on SQLite, or distributed when
// RedisURL and PostgresURL are both set. Zero values take the defaults of
// SPEC section 8.
type Config struct {
	// DataDir holds the SQLite database (default ./taskwire-data).
	DataDir string
	// RedisURL and PostgresURL, both set, select distributed mode (see
	// redispg.ConnectOptions for the URLs' parameters).
	RedisURL    string
	PostgresURL string
	// RedisPoolSize and PostgresMaxConns size the connection pools of
	// distributed mode; 0 keeps the URL's setting, else taskwire's default
	// (see redispg.ConnectOptions).
	RedisPoolSize    int
	PostgresMaxConns int
	// ReconcileInterval is how often distributed mode reconciles Redis
	// with PostgreSQL (default 5s).
	ReconcileInterval time.Duration
	// WorkerTimeout: a worker silent this long goes offline (default 30s).
	WorkerTimeout time.Duration
	// SweepInterval is how often expired leases and silent workers are
	// swept (default 1s); negative turns the sweeper off, for tests that
	// sweep by hand with a fake clock.
	SweepInterval time.Duration
	// EventRetention and MaxEvents bound the event log (defaults 24h and
	// 1,000,000).
	EventRetention time.Duration
	MaxEvents      int
	// ResultBudget bounds the bytes of large results task.get answers
	// hold in memory at once (default service.DefaultResultBudget).
	ResultBudget int64
	// RateLimits per method; nil means service.DefaultRateLimits().
	RateLimits map[string]service.Limit
	// Limiter, when set, enforces the rate limits instead of the
	// default: in embedded mode the in-process one, in distributed mode
	// one kept in the deployment's Redis (redislimit), so that a limit
	// holds across every process. It must be built on RateLimits.
	Limiter service.Limiter
	// Tokens, when set, turns authentication on: every endpoint but
	// /healthz and /readyz needs a known bearer token, and each role may
	// call only what SPEC section 4 allows it. After each Reload, a
	// WebSocket whose token is gone or stands for another caller now is
	// closed with status 1008. Nil: auth off, every caller is an admin.
	Tokens *auth.Tokens
	// MaxBodyBytes bounds a /rpc request body (default 1 GiB + 1 MiB).
	MaxBodyBytes int64
	// MaxBatch bounds the calls of one JSON-RPC batch (default 1,000).
	MaxBatch int
	// BodyGrace is how long a request body may take to arrive, plus a
	// second per MiB (default 1 minute; see rpc.Options).
	BodyGrace time.Duration
	// MaxWaitingClaims bounds the long-poll claims one worker may have
	// waiting at once (default 4).
	MaxWaitingClaims int
	// Version is reported by system.health and rpc.discover.
	Version string
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// EventsHeartbeat is how often an idle GET /events stream gets a
	// keepalive comment (default 15s).
	EventsHeartbeat time.Duration
	// WebSocket tunes GET /ws; its Authenticate hook turns token checks
	// on for WebSocket connections.
	WebSocket ws.Options
	// SQLite tunes the embedded store; its zero value takes the defaults.
	SQLite sqlite.Options
}

// Server is a running taskwire: its store, service and HTTP handler.
type Server struct {
	svc     *service.Service
	handler http.Handler
	closeFn func() error
	log     *slog.Logger
	// stop ends the background loops (sweeper); done is closed when they
	// have returned.
	stop context.CancelFunc
	done chan struct{}
	// hub tails the event log for GET /events; it runs until Drain or
	// Close.
	hub    *events.Hub
	events http.Handler
	// ws serves GET /ws; Drain closes its connections.
	ws *ws.Handler
	// tokens is Config.Tokens: nil when auth is off.
	tokens *auth.Tokens
	// streams are the event streams a tokens reload may end.
	streams streams
	// shutdownGrace is how long Serve waits for the requests in flight
	// when it stops: see shutdownGrace.
	shutdownGrace time.Duration
	// checkHost is set when only requests for a loopback host are served
	// (see protect): auth is off and the server is not known to listen
	// on another address than loopback.
	checkHost atomic.Bool
}

// shutdownGrace is how long the requests in flight get to finish at
// shutdown: the longest a body may take to arrive (rpc.Server.LongestBody)
// and a minute more for the call and its answer. A request still running
// then (a client that stopped reading its answer) is cut.
func shutdownGrace(rpcServer *rpc.Server) time.Duration {
	return rpcServer.LongestBody() + time.Minute
}

// DatabaseFile is the SQLite file's name inside DataDir.
const DatabaseFile = "taskwire.db"

// New opens the store (applying migrations) and builds the handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st, backend, err := openStore(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if rs, ok := st.(redisBacked); ok && cfg.Limiter == nil {
		cfg.Limiter = sharedLimiter(rs, cfg.RateLimits)
	}
	svc := service.New(st, service.Config{
		WorkerTimeout: cfg.WorkerTimeout, RateLimits: cfg.RateLimits,
		Limiter: cfg.Limiter, AuthRequired: cfg.Tokens != nil, MaxWaitingClaims: cfg.MaxWaitingClaims,
		EventRetention: cfg.EventRetention, MaxEvents: cfg.MaxEvents, ResultBudget: cfg.ResultBudget,
		Backend: backend, Version: cfg.Version, Now: cfg.Now, Logger: cfg.Logger,
	})
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{svc: svc, closeFn: st.Close, log: cfg.Logger, stop: stop, done: make(chan struct{}),
		tokens: cfg.Tokens}
	s.checkHost.Store(cfg.Tokens == nil)
	go func() {
		defer close(s.done)
		go svc.RelayReady(bg)
		if cfg.SweepInterval >= 0 {
			svc.RunSweeper(bg, cfg.SweepInterval)
		}
	}()
	s.hub = events.NewHub(st, events.Options{Logger: cfg.Logger})
	go s.hub.Run(bg)
	s.events = events.NewSSEHandler(s.hub, events.SSEOptions{Heartbeat: cfg.EventsHeartbeat, Logger: cfg.Logger})
	reg := prometheus.NewRegistry()
	m := newMetrics(ctx, reg, svc, cfg.Logger)
	rpcServer := rpc.NewServer(methods(svc), rpc.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, MaxBatch: cfg.MaxBatch, BodyGrace: cfg.BodyGrace,
		Logger: cfg.Logger, Version: cfg.Version,
		Observe: m.observe,
	})
	if cfg.WebSocket.Logger == nil {
		cfg.WebSocket.Logger = cfg.Logger
	}
	if cfg.Tokens != nil && cfg.WebSocket.Authenticate == nil {
		cfg.WebSocket.Authenticate = s.authenticateWebSocket
		cfg.WebSocket.Revalidate = s.revalidate
	}
	s.ws = ws.NewHandler(rpcServer, s.hub, cfg.WebSocket)
	if cfg.Tokens != nil {
		cfg.Tokens.OnReload(s.ws.Revalidate)
		cfg.Tokens.OnReload(s.endRevoked)
	}
	s.handler = s.protect(s.routes(rpcServer, reg))
	s.shutdownGrace = shutdownGrace(rpcServer)
	return s, nil
}

// openStore opens the store cfg selects and names its backend: redispg
// when both URLs are set, else SQLite in cfg.DataDir.
func openStore(ctx context.Context, cfg Config) (store.Store, string, error) {
	if cfg.RedisURL != "" || cfg.PostgresURL != "" {
		if cfg.RedisURL == "" || cfg.PostgresURL == "" {
			return nil, "", errors.New("distributed mode needs both a Redis and a PostgreSQL URL")
		}
		st, err := redispg.Connect(ctx, redispg.ConnectOptions{
			RedisURL: cfg.RedisURL, PostgresURL: cfg.PostgresURL,
			RedisPoolSize: cfg.RedisPoolSize, PostgresMaxConns: cfg.PostgresMaxConns,
			Options: redispg.Options{ReconcileInterval: cfg.ReconcileInterval, Logger: cfg.Logger},
		})
		return st, "redispg", err
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "taskwire-data"
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, "", fmt.Errorf("data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DatabaseFile), cfg.SQLite)
	return st, "sqlite", err
}

// redisBacked is a store that keeps its state in Redis (distributed mode),
// where the rate limits are kept too, so that they hold across processes.
type redisBacked interface {
	Redis() (client redis.UniversalClient, keyPrefix string)
}

// sharedLimiter is the rate limiter of every process sharing rs's Redis:
// limits, or the defaults when nil.
func sharedLimiter(rs redisBacked, limits map[string]service.Limit) service.Limiter {
	if limits == nil {
		limits = service.DefaultRateLimits()
	}
	client, prefix := rs.Redis()
	return redislimit.New(client, prefix, limits)
}

// Handler returns the HTTP handler of every endpoint. It refuses
// cross-origin browser requests that may change state and, with auth off,
// requests whose Host is not a loopback name or address (DNS rebinding),
// unless Serve was given an address that is not loopback: a handler
// served otherwise should be served on loopback only.
func (s *Server) Handler() http.Handler { return s.handler }

// WebSocket returns the handler of GET /ws.
func (s *Server) WebSocket() *ws.Handler { return s.ws }

// Hub returns the event hub that feeds GET /events and GET /ws.
func (s *Server) Hub() *events.Hub { return s.hub }

// Service returns the service behind the handler.
func (s *Server) Service() *service.Service { return s.svc }

// Drain makes waiting long-poll claims return, closes the WebSocket
// connections once their calls in flight are answered, and ends the event
// streams (GET /events), ahead of a shutdown: http.Server.Shutdown waits
// for none of them.
func (s *Server) Drain() {
	s.svc.Drain()
	s.ws.Close()
	s.hub.Close()
}

// Close stops the background loops and releases the store; call it after
// the HTTP server has stopped.
func (s *Server) Close() error {
	s.stop()
	s.hub.Close()
	s.ws.Close()
	<-s.done
	return s.closeFn()
}

// Serve runs the HTTP server on addr until ctx ends, then stops taking
// requests, lets those in flight finish (long polls and event streams are
// cut short; the others get shutdownGrace) and closes the store. ready,
// when not nil, is called with the bound address. On an address that is
// not loopback (where auth is on, or --insecure asked for none) any Host
// is served: the names a network reaches this machine by are not known.
func (s *Server) Serve(ctx context.Context, addr string, ready func(addr string)) error {
	if !IsLoopback(addr) {
		s.checkHost.Store(false)
	}
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownGrace)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("shutdown: requests still in flight after %s were cut", s.shutdownGrace)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

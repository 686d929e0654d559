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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// Config configures an embedded server. Zero values take the defaults of
// SPEC section 8.
type Config struct {
	// DataDir holds the SQLite database (default ./taskwire-data).
	DataDir string
	// WorkerTimeout: a worker silent this long goes offline (default 30s).
	WorkerTimeout time.Duration
	// RateLimits per method; nil means service.DefaultRateLimits().
	RateLimits map[string]service.Limit
	// MaxBodyBytes bounds a /rpc request body (default 1 GiB + 1 MiB).
	MaxBodyBytes int64
	// Version is reported by system.health and rpc.discover.
	Version string
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is a running taskwire: its store, service and HTTP handler.
type Server struct {
	svc     *service.Service
	handler http.Handler
	closeFn func() error
	log     *slog.Logger
}

// DatabaseFile is the SQLite file's name inside DataDir.
const DatabaseFile = "taskwire.db"

// New opens the store in cfg.DataDir (applying migrations) and builds the
// handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "taskwire-data"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DatabaseFile), sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	svc := service.New(st, service.Config{
		WorkerTimeout: cfg.WorkerTimeout, RateLimits: cfg.RateLimits,
		Backend: "sqlite", Version: cfg.Version, Now: cfg.Now, Logger: cfg.Logger,
	})
	s := &Server{svc: svc, closeFn: st.Close, log: cfg.Logger}
	reg := prometheus.NewRegistry()
	m := newMetrics(ctx, reg, svc)
	rpcServer := rpc.NewServer(methods(svc), rpc.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, Logger: cfg.Logger, Version: cfg.Version,
		Observe: m.observe,
	})
	s.handler = s.routes(rpcServer, reg)
	return s, nil
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// Service returns the service behind the handler.
func (s *Server) Service() *service.Service { return s.svc }

// Drain makes waiting long-poll claims return, ahead of a shutdown.
func (s *Server) Drain() { s.svc.Drain() }

// Close releases the store; call it after the HTTP server has stopped.
func (s *Server) Close() error { return s.closeFn() }

// Serve runs the HTTP server on addr until ctx ends, then stops taking
// requests, lets those in flight finish (long polls are cut short) and
// closes the store. ready, when not nil, is called with the bound address.
func (s *Server) Serve(ctx context.Context, addr string, ready func(addr string)) error {
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
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Package servertest starts a real taskwire server in-process for tests:
// embedded SQLite in the test's temporary directory, no rate limits, logs
// discarded, everything closed when the test ends.
package servertest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/service"
)

// Config is the configuration tests start from: embedded SQLite in the
// test's temporary directory, no rate limits, logs discarded.
func Config(tb testing.TB) server.Config {
	return server.Config{
		DataDir:    tb.TempDir(),
		RateLimits: map[string]service.Limit{},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Version:    "test",
	}
}

// Start starts a server on Config, applies each option to its
// configuration first, and returns it with its base URL.
func Start(tb testing.TB, opts ...func(*server.Config)) (*server.Server, string) {
	tb.Helper()
	cfg := Config(tb)
	for _, o := range opts {
		o(&cfg)
	}
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(func() {
		s.Drain()
		hs.Close()
		if err := s.Close(); err != nil {
			tb.Errorf("close server: %v", err)
		}
	})
	return s, hs.URL
}

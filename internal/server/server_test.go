package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/service"
)

// bundle is one in-process server on a fresh SQLite file, reached over
// real HTTP on loopback.
type bundle struct {
	srv *Server
	url string
	cl  *rpctest.Client
}

type option func(*Config)

// withRateLimits sets the rate limits (nil map entries: defaults apply).
func withRateLimits(l map[string]service.Limit) option {
	return func(c *Config) { c.RateLimits = l }
}

// withClock makes the server read time from now.
func withClock(now func() time.Time) option {
	return func(c *Config) { c.Now = now }
}

// setup starts a server for one test with rate limits off unless an
// option sets them.
func setup(tb testing.TB, opts ...option) *bundle {
	tb.Helper()
	cfg := Config{
		DataDir:    tb.TempDir(),
		RateLimits: map[string]service.Limit{},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Version:    "test",
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(func() {
		s.Drain()
		hs.Close()
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return &bundle{srv: s, url: hs.URL, cl: rpctest.New(hs.URL)}
}

func unmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }

package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/servertest"
	"github.com/taskwire/taskwire/internal/service"
)

// bundle is a real in-process server (SQLite in a temporary directory)
// and a client of it.
type bundle struct {
	srv *server.Server
	url string
	c   *client.Client
}

// withRateLimits sets the server's rate limits.
func withRateLimits(l map[string]service.Limit) func(*server.Config) {
	return func(c *server.Config) { c.RateLimits = l }
}

// withWorkerTimeout sets how long a silent worker stays online.
func withWorkerTimeout(d time.Duration) func(*server.Config) {
	return func(c *server.Config) { c.WorkerTimeout = d; c.SweepInterval = 100 * time.Millisecond }
}

// setup starts a server without rate limits and returns it with a client
// that retries quickly.
func setup(t *testing.T, opts ...func(*server.Config)) *bundle {
	t.Helper()
	s, url := servertest.Start(t, opts...)
	return &bundle{srv: s, url: url, c: newClient(url)}
}

// newClient returns a client of url with short backoffs.
func newClient(url string) *client.Client {
	return client.New(url, client.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
}

// front starts an HTTP server that runs h and otherwise passes requests
// to next; it returns the front's URL.
func front(t *testing.T, next string, h func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	target, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(hs.Close)
	return hs.URL
}

// peekBody reads the body of r and puts it back, for the front's proxy to
// pass on when its handler does not answer.
func peekBody(r *http.Request) []byte {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body
}

// forward posts body to the /rpc of the server at base and returns its
// answer; on failure it marks the test failed and returns nil.
func forward(t *testing.T, base string, body []byte) []byte {
	resp, err := http.Post(base+"/rpc", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// ctx returns a context that ends with the test or after a minute.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// create creates a task or fails the test.
func create(t *testing.T, b *bundle, p taskwire.CreateParams) *taskwire.Task {
	t.Helper()
	task, err := b.c.CreateTask(ctx(t), p)
	if err != nil {
		t.Fatalf("create %q: %v", p.Text, err)
	}
	return task
}

// get returns a task or fails the test.
func get(t *testing.T, b *bundle, id string) *taskwire.Task {
	t.Helper()
	task, err := b.c.GetTask(ctx(t), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return task
}

// errorsAs is errors.As for *client.Error.
func errorsAs(err error, target **client.Error) bool { return errors.As(err, target) }

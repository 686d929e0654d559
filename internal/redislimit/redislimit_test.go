package redislimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/redislimit"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store"
)

// redisClient connects to the Redis at 127.0.0.1:6379 (TASKWIRE_TEST_REDIS
// overrides), or skips the test loudly; with CI=true or
// TASKWIRE_REQUIRE_SERVICES=1 a missing Redis fails it instead.
func redisClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv("TASKWIRE_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		msg := fmt.Sprintf("REDIS NOT AVAILABLE at %s (%v): the distributed rate limiter is NOT tested", addr, err)
		if os.Getenv("CI") == "true" || os.Getenv("TASKWIRE_REQUIRE_SERVICES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return c
}

// prefix is a key prefix of its own for one test.
func prefix(t *testing.T) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "tw-test-" + hex.EncodeToString(b) + ":"
}

func TestSharedLimit(t *testing.T) {
	t.Parallel()
	c := redisClient(t)
	ctx := context.Background()
	limits := map[string]service.Limit{taskwire.MethodTaskClaim: {N: 5, Per: time.Minute}}
	p := prefix(t)
	// Two processes' limiters on one prefix.
	a, b := redislimit.New(c, p, limits), redislimit.New(c, p, limits)
	for i, l := range []*redislimit.Limiter{a, b, a, b, a} {
		if err := l.Allow(ctx, taskwire.MethodTaskClaim, "w1"); err != nil {
			t.Fatalf("call %d of 5: %v", i+1, err)
		}
	}
	for _, l := range []*redislimit.Limiter{a, b} {
		err := l.Allow(ctx, taskwire.MethodTaskClaim, "w1")
		var rpcErr *taskwire.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != taskwire.CodeRateLimited {
			t.Fatalf("6th call: %v, want -32000", err)
		}
		data := rpcErr.Data.(map[string]any)
		retry := data["retryAfterMs"].(int64)
		if data["method"] != taskwire.MethodTaskClaim || data["limit"] != 5 || data["windowMs"] != int64(60000) ||
			retry < 1 || retry > 12000 {
			t.Errorf("data %v: want method, limit 5, windowMs 60000, retryAfterMs in [1, 12000] (one call every 12s)", data)
		}
	}
	// Another principal, another method, another prefix: their own counts.
	if err := a.Allow(ctx, taskwire.MethodTaskClaim, "w2"); err != nil {
		t.Errorf("another principal: %v", err)
	}
	if err := a.Allow(ctx, taskwire.MethodTaskList, "w1"); err != nil {
		t.Errorf("an unlimited method: %v", err)
	}
	if err := redislimit.New(c, prefix(t), limits).Allow(ctx, taskwire.MethodTaskClaim, "w1"); err != nil {
		t.Errorf("another prefix: %v", err)
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	l := redislimit.New(c, "x:", map[string]service.Limit{taskwire.MethodTaskClaim: {N: 5, Per: time.Minute}})
	err := l.Allow(context.Background(), taskwire.MethodTaskClaim, "w1")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Allow with Redis down: %v, want a backend-unavailable error (-32001)", err)
	}
}

// TestTwoServersShareTheLimit: two servers (each its own SQLite) on one
// Redis prefix hand out one allowance between them, over HTTP, and a batch
// counts each of its calls.
func TestTwoServersShareTheLimit(t *testing.T) {
	t.Parallel()
	c := redisClient(t)
	p := prefix(t)
	limits := map[string]service.Limit{taskwire.MethodTaskCreate: {N: 4, Per: time.Hour}}
	var clients []*rpctest.Client
	for range 2 {
		srv, err := server.New(context.Background(), server.Config{
			DataDir: t.TempDir(), RateLimits: limits, Limiter: redislimit.New(c, p, limits),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { srv.Drain(); hs.Close(); srv.Close() })
		clients = append(clients, rpctest.New(hs.URL))
	}
	ctx := context.Background()
	create := rpctest.Call{Method: taskwire.MethodTaskCreate, Params: map[string]any{"text": "x"}}
	// A batch of 3 on the first server, then 2 single calls on the second.
	resps, err := clients[0].Batch(ctx, []rpctest.Call{create, create, create})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resps {
		if r.Error != nil {
			t.Fatalf("batch call %d: %v", i, r.Error)
		}
	}
	if err := clients[1].Call(ctx, create.Method, create.Params, nil); err != nil {
		t.Fatalf("4th create: %v", err)
	}
	err = clients[1].Call(ctx, create.Method, create.Params, nil)
	var rpcErr *taskwire.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != taskwire.CodeRateLimited {
		t.Fatalf("5th create across the two servers: %v, want -32000", err)
	}
	// The refused call created nothing.
	var list taskwire.ListResult
	if err := clients[1].Call(ctx, taskwire.MethodTaskList, map[string]any{}, &list); err != nil {
		t.Fatal(err)
	}
	if list.TotalCount != 1 {
		t.Errorf("second server holds %d tasks, want 1", list.TotalCount)
	}
}

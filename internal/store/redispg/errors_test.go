package redispg

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/store"
)

// TestRedisErrorsUnavailable: the errors go-redis returns for a Redis
// that cannot serve now (out of memory, a read-only replica, loading,
// cluster or master down, busy, connection refused or dropped) map to a
// *store.UnavailableError; the replies of a wrong command, and redis.Nil,
// pass through. The error replies are real ones, made by a script
// returning them, so that go-redis parses them as it parses the server's.
func TestRedisErrorsUnavailable(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := t.Context()
	reply := func(msg string) error {
		err := env.rdb.Eval(ctx, "return redis.error_reply(ARGV[1])", nil, msg).Err()
		if err == nil {
			t.Fatalf("script replying %q: no error", msg)
		}
		return err
	}
	for _, msg := range []string{
		"OOM command not allowed when used memory > 'maxmemory'.",
		"OOM command not allowed when used memory > 'maxmemory'. script: 71e6319f97b0fe8bdfa1c5df3ce4489946dda479, on @user_script:1.",
		"ERR Error running script (call to f_71e6319f97b0fe8bdfa1c5df3ce4489946dda479): @user_script:1: @user_script: 1: -OOM command not allowed when used memory > 'maxmemory'.",
		"READONLY You can't write against a read only replica.",
		"LOADING Redis is loading the dataset in memory",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
		"CLUSTERDOWN The cluster is down",
		"TRYAGAIN Multiple keys request during rehashing of slot",
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
		"NOREPLICAS Not enough good replicas to write.",
		"ERR max number of clients reached",
		"NOEVSEQ the event counter is missing until it is set again from PostgreSQL",
	} {
		if err := unavailable("redis", reply(msg)); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("reply %q: %v (%T); want a *store.UnavailableError", msg, err, err)
		}
	}
	for _, msg := range []string{
		"WRONGTYPE Operation against a key holding the wrong kind of value",
		"ERR unknown command 'NOPE'",
		"BUSYGROUP Consumer Group name already exists",
		"BUSYKEY Target key name already exists.",
	} {
		if err := unavailable("redis", reply(msg)); errors.Is(err, store.ErrUnavailable) {
			t.Errorf("reply %q: %v; want the reply's own error", msg, err)
		}
	}
	if err := unavailable("redis", env.rdb.Get(ctx, env.prefix+":missing").Err()); err != redis.Nil {
		t.Errorf("GET of a missing key: %v; want redis.Nil", err)
	}

	// A port nothing listens on, and a server that drops each connection.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	dropping, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dropping.Close()
	go func() {
		for {
			c, err := dropping.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset, not an orderly close
			}
			c.Close()
		}
	}()
	for name, addr := range map[string]string{"refused": refused, "reset": dropping.Addr().String()} {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			t.Fatalf("connection %s: no error", name)
		}
		if got := unavailable("redis", err); !errors.Is(got, store.ErrUnavailable) {
			t.Errorf("connection %s: %v (%T); want a *store.UnavailableError", name, got, err)
		}
	}
}

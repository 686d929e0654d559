package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// The services distributed-mode tests run against; TASKWIRE_TEST_REDIS_URL
// and TASKWIRE_TEST_POSTGRES_URL override them.
var (
	testRedisAddr   = envOrDefault("TASKWIRE_TEST_REDIS_ADDR", "127.0.0.1:6379")
	testPostgresURL = envOrDefault("TASKWIRE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
)

func envOrDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// distEnv is one test's share of the services: a Redis key
// prefix, and a PostgreSQL schema, all its own and removed in cleanup.
type distEnv struct {
	name  string
	addr  string // of the Redis server
	rdb   *redis.Client
	pgURL string // in the schema, for the servers
}

// newDistEnv isolates a test on the shared Redis by key prefix and on
// PostgreSQL by schema. It skips, loudly, when Redis or PostgreSQL does not
// answer, and fails instead under CI=true or TASKWIRE_REQUIRE_SERVICES=1.
func newDistEnv(t testing.TB) *distEnv {
	t.Helper()
	return newDistEnvAt(t, testRedisAddr)
}

// newPrivateRedisEnv is newDistEnv on a redis-server of the test's own,
// started on a free port without persistence and stopped in cleanup, for
// tests that flush all of Redis. Without the binary it skips loudly, or
// fails under CI=true or TASKWIRE_REQUIRE_SERVICES=1.
func newPrivateRedisEnv(t testing.TB) *distEnv {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		requireServices(t, "this test needs redis-server on PATH (apt-get install redis-server)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(server, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + port
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not start", addr)
		}
	}
	return newDistEnvAt(t, addr)
}

// requireServices skips the test with msg, loudly, or fails it under
// CI=true or TASKWIRE_REQUIRE_SERVICES=1.
func requireServices(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" || os.Getenv("TASKWIRE_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
}

func newDistEnvAt(t testing.TB, addr string) *distEnv {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	e := &distEnv{name: "twd_" + hex.EncodeToString(b), addr: addr}
	ctx := context.Background()
	e.rdb = redis.NewClient(&redis.Options{Addr: addr})
	conn, err := pgx.Connect(ctx, testPostgresURL)
	if err == nil {
		err = e.rdb.Ping(ctx).Err()
	}
	if err != nil {
		requireServices(t, fmt.Sprintf("distributed-mode tests need Redis at %s and PostgreSQL at %s: %v", addr, testPostgresURL, err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+e.name); err != nil {
		t.Fatal(err)
	}
	e.pgURL = testPostgresURL + "&schema=" + e.name + "&application_name=" + e.name
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, testPostgresURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+e.name+" CASCADE")
			conn.Close(ctx)
		}
		iter := e.rdb.Scan(ctx, 0, "{"+e.name+"}:*", 1000).Iterator()
		for iter.Next(ctx) {
			e.rdb.Del(ctx, iter.Val())
		}
		e.rdb.Close()
	})
	return e
}

// redisURL is the URL of the env's Redis with its prefix.
func (e *distEnv) redisURL() string {
	return fmt.Sprintf("redis://%s/0?prefix=%s", e.addr, e.name)
}

// start runs a distributed `taskwire serve` on the env, PostgreSQL at
// pgURL when given (a proxy), with a reconcile interval of 1s.
func (e *distEnv) start(t testing.TB, pgURL string, args ...string) *child {
	t.Helper()
	if pgURL == "" {
		pgURL = e.pgURL
	}
	return startChild(t, append([]string{"--redis", e.redisURL(), "--postgres", pgURL, "--no-rate-limit",
		"--reconcile-interval", "1s", "--worker-timeout", "5s"}, args...)...)
}

// rowState is what agreement compares of a task in both stores.
type rowState struct {
	status  string
	attempt int
}

// agree checks that PostgreSQL and Redis hold the same status and attempt
// for every task (a final task that Redis lost counts as agreeing: it is
// served from PostgreSQL), waiting up to a minute for the outbox to
// drain. It returns the number of tasks PostgreSQL holds by status.
func (e *distEnv) agree(t *testing.T) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testPostgresURL+"&search_path="+e.name)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var diffs []string
	var byStatus map[string]int
	for deadline := time.Now().Add(time.Minute); ; {
		diffs, byStatus = e.compare(t, conn)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(diffs) > 0 {
		t.Errorf("PostgreSQL and Redis disagree on %d tasks, e.g. %v", len(diffs), diffs[:min(5, len(diffs))])
	}
	return byStatus
}

func (e *distEnv) compare(t *testing.T, conn *pgx.Conn) ([]string, map[string]int) {
	ctx := context.Background()
	rows, err := conn.Query(ctx, "SELECT id, status, attempt FROM tasks WHERE NOT deleted")
	if err != nil {
		t.Fatal(err)
	}
	pg := map[string]rowState{}
	byStatus := map[string]int{}
	for rows.Next() {
		var id string
		var r rowState
		if err := rows.Scan(&id, &r.status, &r.attempt); err != nil {
			t.Fatal(err)
		}
		pg[id] = r
		byStatus[r.status]++
	}
	rows.Close()
	pipe := e.rdb.Pipeline()
	cmds := map[string]*redis.SliceCmd{}
	for id := range pg {
		cmds[id] = pipe.HMGet(ctx, "{"+e.name+"}:t:"+id, "st", "att")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var diffs []string
	for id, c := range cmds {
		v := c.Val()
		st, _ := v[0].(string)
		att, _ := v[1].(string)
		want := pg[id]
		if st == "" && (want.status == "completed" || want.status == "failed") {
			continue // a final task Redis lost is served from PostgreSQL
		}
		if st != want.status || att != fmt.Sprint(want.attempt) {
			diffs = append(diffs, fmt.Sprintf("%s: postgres %s/%d, redis %q/%q", id, want.status, want.attempt, st, att))
		}
	}
	return diffs, byStatus
}

package redispg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Addresses of the services the tests use; TASKWIRE_TEST_REDIS_URL and
// TASKWIRE_TEST_POSTGRES_URL override them.
var (
	testRedisURL    = envOr("TASKWIRE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
	testPostgresURL = envOr("TASKWIRE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// requireServices skips the test, loudly, when Redis or PostgreSQL does
// not answer; under CI=true or TASKWIRE_REQUIRE_SERVICES=1 it fails instead.
func requireServices(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := "redispg tests need Redis at " + testRedisURL + " and PostgreSQL at " + testPostgresURL + ": " + err.Error()
	if os.Getenv("CI") == "true" || os.Getenv("TASKWIRE_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
}

// testEnv is one test's isolated piece of the shared services: its own
// PostgreSQL schema and Redis key prefix, both removed in cleanup.
type testEnv struct {
	schema, prefix string
	rdb            redis.UniversalClient
}

// newTestEnv creates a unique schema and prefix for t.
func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "tw_" + hex.EncodeToString(b)
	ctx := context.Background()
	opt, err := redis.ParseURL(testRedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		requireServices(t, err)
	}
	conn, err := pgx.Connect(ctx, testPostgresURL)
	requireServices(t, err)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	env := &testEnv{schema: name, prefix: name, rdb: rdb}
	t.Cleanup(func() {
		ctx := context.Background()
		if conn, err := pgx.Connect(ctx, testPostgresURL); err == nil {
			conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
			conn.Close(ctx)
		}
		deleteKeys(ctx, rdb, "{"+name+"}:*")
		rdb.Close()
	})
	return env
}

// deleteKeys deletes the keys matching pattern.
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) {
	iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
	}
	if len(batch) > 0 {
		rdb.Del(ctx, batch...)
	}
}

// pool opens a pool whose connections use env's schema.
func (env *testEnv) pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return env.poolAt(t, testPostgresURL)
}

// poolAt opens a pool on PostgreSQL at url whose connections use env's
// schema.
func (env *testEnv) poolAt(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = env.schema
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newTestStore opens a Store on a fresh environment.
func newTestStore(t testing.TB, opts Options) *Store {
	t.Helper()
	env := newTestEnv(t)
	return env.open(t, opts)
}

// open opens a Store on env, closed in cleanup.
func (env *testEnv) open(t testing.TB, opts Options) *Store {
	t.Helper()
	return env.openOn(t, env.pool(t), opts)
}

// openOn opens a Store on env's Redis and pool, closed in cleanup.
func (env *testEnv) openOn(t testing.TB, pool *pgxpool.Pool, opts Options) *Store {
	t.Helper()
	opts.KeyPrefix = env.prefix
	st, err := Open(context.Background(), env.rdb, pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

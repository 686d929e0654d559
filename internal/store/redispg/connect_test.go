package redispg

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestConnectSchemaCreatedMeanwhile: a process connecting while another
// creates the same schema (two servers starting together on a new
// schema) waits for it and opens its store in that schema, instead of
// failing on PostgreSQL's unique index of schema names.
func TestConnectSchemaCreatedMeanwhile(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	ctx := t.Context()
	schema := env.schema + "_new"
	other, err := pgx.Connect(ctx, testPostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	t.Cleanup(func() { dropSchema(schema) })
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		st, err := Connect(ctx, ConnectOptions{RedisURL: testRedisURL + "?prefix=" + env.prefix,
			PostgresURL: testPostgresURL + "&schema=" + schema,
			Options:     Options{ReconcileInterval: -1}})
		if err == nil {
			st.Close()
		}
		done <- err
	}()
	waitForLockWaiter(t, "CREATE SCHEMA%"+schema+"%")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("connect while the schema was being created: %v", err)
	}
}

// waitForLockWaiter returns once a session runs a statement matching
// pattern (a LIKE pattern) and waits on a lock. It asks on a connection
// of its own, outside any transaction, whose view of the sessions is new
// at every statement.
func waitForLockWaiter(t *testing.T, pattern string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testPostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for {
		var waiting bool
		if err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE $1)`, pattern).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dropSchema drops schema, if any, with what it holds.
func dropSchema(schema string) {
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, testPostgresURL); err == nil {
		conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		conn.Close(ctx)
	}
}

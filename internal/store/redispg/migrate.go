package redispg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock under which migrations run, one per
// schema, so that processes starting together on one schema apply each
// migration once, and deployments on different schemas do not wait on
// each other.
const migrateLock = "SELECT pg_advisory_lock(hashtextextended('taskwire migrations ' || current_schema(), 0))"

const migrateUnlock = "SELECT pg_advisory_unlock(hashtextextended('taskwire migrations ' || current_schema(), 0))"

// migrate applies the embedded migrations not applied yet, in the order of
// their numbered names, each in a transaction, holding the advisory lock.
// Tables go to the connection's search_path.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return unavailable("postgres", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, migrateLock); err != nil {
		return unavailable("postgres", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), migrateUnlock)
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", base)
		}
		if err := applyMigration(ctx, conn.Conn(), name, version); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, name string, version int) error {
	sql, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var done bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
			version).Scan(&done); err != nil || done {
			return err
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version)
		return err
	})
}

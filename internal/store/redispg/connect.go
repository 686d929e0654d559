package redispg

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// ConnectOptions say where the two services are and how many connections
// to keep to each.
//
// RedisURL is a go-redis URL (redis://[user:pass@]host:port/db, rediss://
// for TLS) with two query parameters of taskwire's own: prefix=NAME sets
// Options.KeyPrefix, and cluster=true talks to a Redis Cluster (more
// seed nodes as addr=host:port parameters). PostgresURL is a libpq URL
// with one parameter of taskwire's own: schema=NAME keeps the tables in
// that schema, created if missing.
type ConnectOptions struct {
	RedisURL    string
	PostgresURL string
	// RedisPoolSize and PostgresMaxConns size the connection pools; 0
	// keeps the URL's setting, else 64 Redis connections (for a cluster,
	// go-redis's default per node) and 32 PostgreSQL connections.
	RedisPoolSize    int
	PostgresMaxConns int
	Options
}

// Default pool sizes: a JSON-RPC batch runs up to 32 calls at once, and
// each create or completion holds a PostgreSQL connection through a
// commit; PostgreSQL flushes the commits in flight together.
const (
	defaultPostgresConns = 32
	defaultRedisConns    = 64
)

// Connect opens the clients of both services and a Store on them; Close
// closes them.
func Connect(ctx context.Context, c ConnectOptions) (*Store, error) {
	rdb, prefix, err := openRedis(c.RedisURL, c.RedisPoolSize)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	pool, err := openPostgres(ctx, c.PostgresURL, c.PostgresMaxConns)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if prefix != "" {
		c.Options.KeyPrefix = prefix
	}
	st, err := Open(ctx, rdb, pool, c.Options)
	if err != nil {
		rdb.Close()
		pool.Close()
		return nil, err
	}
	st.owned = append(st.owned, func() { rdb.Close() }, pool.Close)
	return st, nil
}

// openRedis returns the client of rawURL and its prefix parameter. The
// client ends a command when its context does (not only after its read
// timeout), so that the bound of a call (Options.WriteTimeout) holds for
// Redis too.
func openRedis(rawURL string, poolSize int) (redis.UniversalClient, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	q := u.Query()
	prefix := q.Get("prefix")
	cluster, _ := strconv.ParseBool(q.Get("cluster"))
	q.Del("prefix")
	q.Del("cluster")
	u.RawQuery = q.Encode()
	if cluster {
		opt, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, "", err
		}
		if poolSize > 0 {
			opt.PoolSize = poolSize
		}
		opt.ContextTimeoutEnabled = true
		return redis.NewClusterClient(opt), prefix, nil
	}
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, "", err
	}
	switch {
	case poolSize > 0:
		opt.PoolSize = poolSize
	case !q.Has("pool_size"):
		opt.PoolSize = defaultRedisConns
	}
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), prefix, nil
}

// openPostgres returns a pool on rawURL, in its schema parameter's schema.
func openPostgres(ctx context.Context, rawURL string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, err
	}
	switch {
	case maxConns > 0:
		cfg.MaxConns = int32(maxConns)
	case !strings.Contains(rawURL, "pool_max_conns"):
		cfg.MaxConns = defaultPostgresConns
	}
	if schema, ok := cfg.ConnConfig.RuntimeParams["schema"]; ok {
		delete(cfg.ConnConfig.RuntimeParams, "schema")
		if err := createSchema(ctx, cfg.ConnConfig.Copy(), schema); err != nil {
			return nil, err
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// createSchema creates schema unless it exists. A session creating it at
// the same time (another process starting) makes IF NOT EXISTS fail on
// the unique index of schema names once that session commits; the
// statement run again then finds the schema.
func createSchema(ctx context.Context, cfg *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return unavailable("postgres", err)
	}
	defer conn.Close(ctx)
	sql := "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{schema}.Sanitize()
	_, err = conn.Exec(ctx, sql)
	var pgE *pgconn.PgError
	if errors.As(err, &pgE) && (pgE.Code == "23505" || pgE.Code == "42P06") { // unique violation, duplicate schema
		_, err = conn.Exec(ctx, sql)
	}
	return err
}

// PingBackends reports, by name, whether each service answers
// (store.BackendPinger).
func (s *Store) PingBackends(ctx context.Context) map[string]error {
	return map[string]error{"redis": s.PingRedis(ctx), "postgres": s.PingPostgres(ctx)}
}

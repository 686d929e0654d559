// Package redispg is taskwire's distributed store: Redis holds the live
// coordination state (queues, leases, workers, the event log) and every
// state transition happens in one Lua script; PostgreSQL holds the
// durable record of every task and its result. Any number of taskwire
// processes may share one Redis (or Redis Cluster) and one PostgreSQL.
//
// What reaches PostgreSQL before a call returns: creates, updates,
// assignments, unassignments, deletions and unregistrations (the task rows
// are written in a PostgreSQL transaction that commits only after the
// Redis script did), and completions (the result and outcome are staged
// under the task's attempt first). Claims, lease renewals, expiries and
// the task rows of completions travel through an outbox stream in Redis
// that a persister in every process applies in batches; ListTasks and
// Stats apply what the outbox holds before they read, so they see every
// change acknowledged before them.
package redispg

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/store"
)

var (
	//go:embed lua/apply.lua
	applyLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/heartbeat.lua
	heartbeatLua string
	//go:embed lua/raise.lua
	raiseLua string
	//go:embed lua/settle.lua
	settleLua string
)

// scripts are the Lua scripts; redis.Script runs them with EVALSHA and
// loads them again when Redis answers NOSCRIPT.
type scripts struct {
	apply, claim, heartbeat, raise, settle *redis.Script
}

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// KeyPrefix is the hash tag of every Redis key (default "taskwire"):
	// deployments, or tests, sharing one Redis use different prefixes.
	KeyPrefix string
	// ReconcileInterval is how often a process reconciles Redis with
	// PostgreSQL (default 5s); negative turns the background loops
	// (persister, reconciler) off.
	ReconcileInterval time.Duration
	// PersistBatch is the most outbox entries the persister applies in one
	// PostgreSQL batch (default 500).
	PersistBatch int
	// WriteTimeout bounds the waits on Redis and PostgreSQL of each call
	// on a request's path (default 10s): each PostgreSQL write of a
	// create or a completion, each other call as a whole (all of its
	// tries), each chunk of a result read. Past it the call answers a
	// *store.UnavailableError instead of waiting on a backend that
	// stopped answering.
	WriteTimeout time.Duration
	Logger       *slog.Logger
}

// Store is the distributed store.Store.
type Store struct {
	rdb     redis.UniversalClient
	pg      *pgxpool.Pool
	k       keys
	opts    Options
	scripts scripts
	log     *slog.Logger
	// consumer names this process in the outbox's consumer group.
	consumer string

	events *store.Signal
	ready  *store.Signal
	group  *groupCommit
	// applier runs transitions in shared runs of apply.lua; reader reads
	// task hashes in shared pipelines.
	applier *gatherer[*applyReq]
	reader  *gatherer[*readReq]
	// seqMu guards lastSeq, the last event id the events signal fired for,
	// and is held while it fires (see noted).
	seqMu   sync.Mutex
	lastSeq int64
	// afterScript, when set (by tests), runs in persistThenApply between
	// the script and the PostgreSQL commit.
	afterScript func(pgx.Tx)
	// firing, when set (by tests), runs in noted right before the events
	// signal fires.
	firing func()

	sub  *redis.PubSub
	stop context.CancelFunc
	wg   sync.WaitGroup
	// owned are closed by Close: the clients Connect made.
	owned []func()
	// leaseRead, when set (by tests), runs in each expiry of a lease right
	// after the sweep read the task.
	leaseRead func(id string)
}

var _ store.Store = (*Store)(nil)

// Open returns a Store on the given clients, applying the PostgreSQL
// migrations first (under an advisory lock, so several processes may start
// at once), and starts its background loops: the notification listener,
// the outbox persister and the reconciler.
func Open(ctx context.Context, rdb redis.UniversalClient, pg *pgxpool.Pool, opts Options) (*Store, error) {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "taskwire"
	}
	if opts.ReconcileInterval == 0 {
		opts.ReconcileInterval = 5 * time.Second
	}
	if opts.PersistBatch <= 0 {
		opts.PersistBatch = 500
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := migrate(ctx, pg); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	s := &Store{
		rdb: rdb, pg: pg, k: newKeys(opts.KeyPrefix), opts: opts, log: opts.Logger,
		scripts: scripts{apply: redis.NewScript(applyLua), claim: redis.NewScript(claimLua),
			heartbeat: redis.NewScript(heartbeatLua), raise: redis.NewScript(raiseLua),
			settle: redis.NewScript(settleLua)},
		consumer: consumerName(),
		events:   &store.Signal{}, ready: &store.Signal{}, group: newGroupCommit(pg, opts.WriteTimeout),
		applier: newGatherer[*applyReq](maxGroupApply), reader: newGatherer[*readReq](maxGroupRead),
	}
	if err := s.ensureGroup(ctx); err != nil {
		return nil, err
	}
	if err := s.keepEventSeq(ctx); err != nil {
		return nil, fmt.Errorf("event counter: %w", err)
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	sub := rdb.Subscribe(ctx, s.k.channel())
	if _, err := sub.Receive(ctx); err != nil {
		stop()
		sub.Close()
		return nil, fmt.Errorf("subscribe: %w", s.redisErr(err))
	}
	s.sub = sub
	s.goLoop(func() { s.listen(bg, sub) })
	s.group.run(bg, s.goLoop)
	s.runGatherers(bg)
	if opts.ReconcileInterval > 0 {
		s.goLoop(func() { s.persistLoop(bg) })
		s.goLoop(func() { s.reconcileLoop(bg) })
	}
	return s, nil
}

func (s *Store) goLoop(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// consumerName is unique per process and Open.
func consumerName() string {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// txn starts a transition on s's keys.
func (s *Store) txn() *txn { return &txn{k: s.k} }

// Redis returns the store's Redis client and the prefix every key of the
// deployment starts with (its hash tag), for state other parts keep beside
// the store's, such as the rate limits shared by every process.
func (s *Store) Redis() (client redis.UniversalClient, keyPrefix string) { return s.rdb, s.k.tag }

// Ping reports whether both Redis and PostgreSQL answer.
func (s *Store) Ping(ctx context.Context) error {
	return errors.Join(s.PingRedis(ctx), s.PingPostgres(ctx))
}

// PingRedis reports whether Redis answers.
func (s *Store) PingRedis(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.redisErr(err)
	}
	return nil
}

// PingPostgres reports whether PostgreSQL answers.
func (s *Store) PingPostgres(ctx context.Context) error {
	if err := s.pg.Ping(ctx); err != nil {
		return s.pgErr(err)
	}
	return nil
}

// Close stops the background loops (one last outbox flush included) and
// closes the clients Connect opened.
func (s *Store) Close() error {
	s.stop()
	s.sub.Close() // ends the listener's blocking read
	s.wg.Wait()
	for _, f := range s.owned {
		f()
	}
	return nil
}

// retryAfter is the retry hint of an unavailable backend.
const retryAfter = time.Second

// redisErr maps a Redis failure to store.ErrUnavailable (context errors
// pass through, marked as the end of a wait on Redis).
func (s *Store) redisErr(err error) error {
	return unavailable("redis", err)
}

// pgErr maps a PostgreSQL failure to store.ErrUnavailable.
func (s *Store) pgErr(err error) error {
	return unavailable("postgres", err)
}

func unavailable(backend string, err error) error {
	var (
		u      *store.UnavailableError
		pgE    *pgconn.PgError
		redisE redis.Error
	)
	switch {
	case err == nil, errors.As(err, &u):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if backend == "redis" {
			return redisWait{err}
		}
		return err
	case errors.As(err, &pgE) && !unavailableCode(pgE.Code):
		return err // the server answered: a statement's error, not an outage
	case errors.As(err, &redisE) && !unavailableReply(redisE.Error()):
		return err
	}
	return &store.UnavailableError{Backend: backend, RetryAfter: retryAfter, Err: err}
}

// unavailableCode reports whether a PostgreSQL error code says the server
// cannot serve now: connection exceptions (08), operator intervention
// such as pg_terminate_backend (57P0x), insufficient resources (53).
func unavailableCode(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57P") || strings.HasPrefix(code, "53")
}

// unavailableReplies are the codes (first words) of the Redis error
// replies of a server that cannot serve now, rather than of a wrong
// command: out of memory, loading, a read-only replica, master or
// cluster down, a slot being moved, a script running too long, too few
// replicas, and NOEVSEQ, the scripts' own reply while the event counter
// is missing.
var unavailableReplies = map[string]bool{
	"OOM": true, "LOADING": true, "READONLY": true, "MASTERDOWN": true, "CLUSTERDOWN": true,
	"TRYAGAIN": true, "BUSY": true, "NOREPLICAS": true, "NOEVSEQ": true,
}

// unavailableReply reports whether a Redis error reply is a passing state
// of the server rather than a wrong command. A script's failed call
// replies the call's error (Redis 7), or before Redis 7 an ERR that
// quotes it after " -".
func unavailableReply(msg string) bool {
	if msg == "ERR max number of clients reached" {
		return true
	}
	if rest, ok := strings.CutPrefix(msg, "ERR Error running script"); ok {
		if _, quoted, ok := strings.Cut(rest, ": -"); ok {
			msg = quoted
		}
	}
	code, _, _ := strings.Cut(msg, " ")
	return unavailableReplies[code]
}

package redispg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskwire/taskwire/internal/store"
)

// groupCommit runs the small writes of concurrent callers (task rows of
// creates, staged completions) in shared PostgreSQL transactions: a
// committer takes every write waiting, sends all their statements in one
// batch inside one transaction and commits once, so callers share one
// commit (and its flush to disk) instead of paying one each. Each write is
// durable when its call returns. Several committers run, so that a group
// forms while the previous one commits. Each commit is bounded by timeout,
// so that a PostgreSQL that stops answering fails the writes as
// unavailable instead of holding them.
type groupCommit struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	writes  *gatherer[*groupWrite]
}

// groupWrite is one caller's statements, or task rows, and the channel of
// its outcome.
type groupWrite struct {
	b    *pgx.Batch
	rows []*taskState
	done chan error
}

// Bounds of group commit: committers running at once, and writes one
// group takes.
const (
	committers    = 4
	maxGroupWrite = 256
)

func newGroupCommit(pool *pgxpool.Pool, timeout time.Duration) *groupCommit {
	return &groupCommit{pool: pool, timeout: timeout, writes: newGatherer[*groupWrite](maxGroupWrite)}
}

// run runs the committers until ctx ends.
func (g *groupCommit) run(ctx context.Context, goLoop func(func())) {
	g.writes.run(ctx, committers, goLoop, g.commit)
}

// commit runs group in one transaction. When it fails for a reason other
// than an outage, one write may be at fault: each is then run alone, so
// that only that one fails.
func (g *groupCommit) commit(ctx context.Context, group []*groupWrite) {
	err := g.exec(ctx, group)
	if err != nil && len(group) > 1 && !errors.Is(unavailable("postgres", err), store.ErrUnavailable) {
		for _, w := range group {
			w.done <- g.exec(ctx, []*groupWrite{w})
		}
		return
	}
	for _, w := range group {
		w.done <- err
	}
}

// exec runs group in one transaction, within g's timeout: one pipelined
// batch, which PostgreSQL runs as one implicit transaction (a batch ends
// in a single Sync), so the group costs one round trip, not three. The
// task rows of all its writes go first, in one statement (a multi-row one
// when there are several).
func (g *groupCommit) exec(ctx context.Context, group []*groupWrite) error {
	return withTimeout(ctx, g.timeout, func(ctx context.Context) error {
		b := &pgx.Batch{}
		var rows []*taskState
		for _, w := range group {
			rows = append(rows, w.rows...)
		}
		switch {
		case len(rows) == 1:
			queueTaskWrites(b, rows, nil)
		case len(rows) > 1:
			if err := queueTaskRows(b, rows); err != nil {
				return err
			}
		}
		for _, w := range group {
			for _, q := range w.b.QueuedQueries {
				// Fresh, as pgx keeps per-connection state in a queued
				// query; with the caller's callback on its result.
				b.QueuedQueries = append(b.QueuedQueries, &pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments, Fn: q.Fn})
			}
		}
		return g.pool.SendBatch(ctx, b).Close()
	})
}

// bounded runs f on ctx bounded by the store's WriteTimeout (see
// withTimeout). Every call of a request's path waits on the backends
// within it, so that one that stops answering (a network dropping its
// packets) makes the call answer unavailable instead of hanging.
func (s *Store) bounded(ctx context.Context, f func(context.Context) error) error {
	return withTimeout(ctx, s.opts.WriteTimeout, f)
}

// boundedRetry runs op as retry does, all tries within one bound.
func (s *Store) boundedRetry(ctx context.Context, op func(context.Context) error) error {
	return s.bounded(ctx, func(ctx context.Context) error {
		return retry(ctx, func() error { return op(ctx) })
	})
}

// boundedValue is bounded for an f with a result.
func boundedValue[T any](ctx context.Context, s *Store, f func(context.Context) (T, error)) (T, error) {
	var v T
	err := s.bounded(ctx, func(ctx context.Context) (err error) {
		v, err = f(ctx)
		return err
	})
	return v, err
}

// withTimeout runs f on ctx bounded by timeout. When the bound ends it
// (not ctx), the backend f waited on did not answer in time: the error is
// a *store.UnavailableError naming it (see waitedOn).
func withTimeout(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	bounded, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := f(bounded)
	if err != nil && ctx.Err() == nil && bounded.Err() != nil {
		return &store.UnavailableError{Backend: waitedOn(err), RetryAfter: retryAfter,
			Err: fmt.Errorf("no answer within %s: %v", timeout, err)}
	}
	return err
}

// waitedOn names the backend whose wait err ended: the one an
// unavailable error names, Redis for a wait on Redis (see redisWait),
// else PostgreSQL.
func waitedOn(err error) string {
	var (
		u *store.UnavailableError
		w redisWait
	)
	switch {
	case errors.As(err, &u):
		return u.Backend
	case errors.As(err, &w):
		return "redis"
	}
	return "postgres"
}

// redisWait is the context error that ended a wait on Redis, as itself.
type redisWait struct{ error }

func (e redisWait) Unwrap() error { return e.error }

// errClosed answers the calls made after Close.
var errClosed = errors.New("store closed")

// write commits the statements of b, in a group with other callers'. It
// returns when ctx ends too, the outcome of the write then unknown (the
// group commits or fails on its own, within g's timeout).
func (g *groupCommit) write(ctx context.Context, b *pgx.Batch) error {
	w := &groupWrite{b: b, done: make(chan error, 1)}
	return g.writes.call(ctx, w, w.done)
}

// writeRows commits the rows of tasks, which are new (no other write of
// the group names them), as write does.
func (g *groupCommit) writeRows(ctx context.Context, tasks ...*taskState) error {
	w := &groupWrite{b: &pgx.Batch{}, rows: tasks, done: make(chan error, 1)}
	return g.writes.call(ctx, w, w.done)
}

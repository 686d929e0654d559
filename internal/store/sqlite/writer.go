package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

var errClosed = errors.New("sqlite: store is closed")

// An op is one write submitted to the writer. fn runs inside the batch
// transaction in a savepoint of its own; its error rolls back its own
// changes only.
type op struct {
	ctx  context.Context
	fn   func(tx *writeTx) error
	done chan error
	// relaxed marks an op whose loss on power failure would only return
	// tasks to the queue (claims, heartbeats, sweeps: SPEC 7.1 lets them
	// live in memory in distributed mode). A batch of relaxed ops alone is
	// answered without an fsync of its own: its commit survives a process
	// crash, and the next fsync covers it too.
	relaxed bool
}

// writer owns the one connection that writes, and commits the ops queued
// behind each other in one transaction: group commit. SQLite admits one
// writer at a time anyway; batching makes the ops of concurrent callers
// share one BEGIN/COMMIT and so one fsync of the WAL, which the syncer
// waits for while the writer commits the next batch.
type writer struct {
	db   *sql.DB
	conn *sql.Conn
	tx   *writeTx
	ops  chan *op
	max  int
	// changed fires after each commit that appended events.
	changed *store.Signal
	// lastEvent is the seq of the newest event committed.
	lastEvent atomic.Int64
	sync      *walSyncer
	// path is the database file, as SQLite resolved it.
	path string
	// restartWAL asks the writer to finish a checkpoint before its next
	// batch; see checkpointer.
	restartWAL atomic.Bool
	// counts are the tasks of each queue and status as of the last
	// commit.
	counts *taskCounts

	mu      sync.RWMutex // held for reading while sending on ops
	closed  bool
	stopped chan struct{}
}

// newWriter returns a writer on conn, a connection at synchronous=NORMAL
// to the database file at path; run starts it.
func newWriter(ctx context.Context, db *sql.DB, conn *sql.Conn, path string, maxBatch int, counts *taskCounts) *writer {
	return &writer{
		db: db, conn: conn, counts: counts,
		tx:      &writeTx{ctx: ctx, conn: conn, stmts: map[string]*sql.Stmt{}, seen: newSignsOfLife()},
		ops:     make(chan *op, maxBatch),
		max:     maxBatch,
		changed: &store.Signal{},
		sync:    newWALSyncer(path),
		path:    path,
		stopped: make(chan struct{}),
	}
}

// do submits fn to the writer and waits until its batch has committed and
// is on disk.
// When ctx ends before fn is submitted, or before it has started, fn never
// runs and do returns ctx's error; once fn has started, do waits for its
// outcome whatever ctx does, and returns that (a client that hangs up
// early, or half-closes its connection, must not be told a create failed
// that was made). fn's statements run on
// the writer's context, never on ctx: interrupting one would roll back the
// whole batch.
func (w *writer) do(ctx context.Context, fn func(tx *writeTx) error) error {
	return w.submit(&op{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// doRelaxed is do for an op whose loss on power failure only returns tasks
// to the queue; see op.relaxed.
func (w *writer) doRelaxed(ctx context.Context, fn func(tx *writeTx) error) error {
	return w.submit(&op{ctx: ctx, fn: fn, done: make(chan error, 1), relaxed: true})
}

func (w *writer) submit(o *op) error {
	if err := w.sync.failure(); err != nil {
		return err
	}
	ctx := o.ctx
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.ops <- o:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	return unavailable(<-o.done)
}

// run commits batches until the ops channel is closed and drained, then
// closes the syncer's queue (stop waits for the syncer).
func (w *writer) run() {
	defer close(w.stopped)
	go w.sync.run()
	defer close(w.sync.queue)
	batch := make([]*op, 0, w.max)
	for o := range w.ops {
		if w.restartWAL.Swap(false) {
			// A failed checkpoint leaves the WAL longer until the next one.
			_, _ = w.conn.ExecContext(w.tx.ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		}
		batch = append(batch[:0], o)
		// Let the callers the last commit woke submit their next op
		// before the batch is cut: it keeps batches full under load.
		runtime.Gosched()
		batch = appendReady(batch, w.ops, w.max)
		w.commit(batch)
		clear(batch)
	}
}

// appendReady appends to buf the values ch holds at once, without waiting,
// until buf has limit values.
func appendReady[T any](buf []T, ch <-chan T, limit int) []T {
	for len(buf) < limit {
		select {
		case v, ok := <-ch:
			if !ok {
				return buf
			}
			buf = append(buf, v)
		default:
			return buf
		}
	}
	return buf
}

// commit runs batch in one transaction and hands it to the syncer, which
// answers every op once the WAL is on disk; a batch that needs no fsync
// is answered here when no earlier batch waits for one. An op that fails
// is rolled back to its savepoint and gets its error; when the transaction
// itself fails, every op that had not failed on its own gets that error.
// When the committed ops appended events, the event signal fires before
// any op is answered.
func (w *writer) commit(batch []*op) {
	errs := make([]error, len(batch))
	err := w.runBatch(batch, errs)
	if err == nil {
		if _, lost := walWriteFailures(w.path); lost != nil {
			// Frames the transaction wrote may not be in the file.
			err = lostTransaction(lost)
		}
	}
	if err == nil {
		if _, err = w.tx.exec("COMMIT"); err != nil {
			err = fmt.Errorf("commit: %w", err)
		}
	}
	if err == nil {
		if werr, _ := walWriteFailures(w.path); werr != nil {
			// Committed, but its WAL frames may not be in the file.
			err = w.sync.fail(werr)
		}
	}
	if err == nil {
		w.tx.seen.committed(w.tx.wrote, w.tx.kept)
		w.counts.add(w.tx.counts)
	}
	if err == nil && len(w.tx.events) > 0 {
		w.lastEvent.Store(w.tx.lastEvent)
		w.changed.Fire()
	}
	if err != nil {
		_, _ = w.conn.ExecContext(w.tx.ctx, "ROLLBACK")
		clearWALWriteLost(w.path) // what it lost went with the transaction
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	durable := false
	for i, o := range batch {
		durable = durable || (errs[i] == nil && !o.relaxed)
	}
	c := committed{ops: batch, errs: errs, durable: durable}
	if !durable && w.sync.idle() {
		// Nothing committed before is waiting for its fsync: answering
		// now saves the claims of a quiet moment a hand-off.
		c.answer(w.sync.failure())
		return
	}
	c.ops = slices.Clone(batch)
	w.sync.send(c)
}

// runBatch begins the transaction and runs each op in a savepoint, setting
// errs[i] to op i's error. It returns an error when the transaction can no
// longer be committed. The op of a batch of one runs without a savepoint
// (two statements fewer for a lone op): when it fails, runBatch returns
// its error, and the whole transaction is rolled back.
func (w *writer) runBatch(batch []*op, errs []error) error {
	w.tx.events, w.tx.touches, w.tx.counts = w.tx.events[:0], w.tx.touches[:0], w.tx.counts[:0]
	w.tx.wrote, w.tx.kept = w.tx.wrote[:0], w.tx.kept[:0]
	w.tx.lastEvent = w.lastEvent.Load()
	if _, err := w.tx.exec("BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	solo := len(batch) == 1
	for i, o := range batch {
		if errs[i] = o.ctx.Err(); errs[i] != nil {
			continue
		}
		if solo {
			if errs[i] = o.fn(w.tx); errs[i] != nil {
				return errs[i]
			}
			continue
		}
		if _, err := w.tx.exec("SAVEPOINT op"); err != nil {
			return lostTransaction(fmt.Errorf("savepoint: %w", err))
		}
		appended, touched, counted, wrote := len(w.tx.events), len(w.tx.touches), len(w.tx.counts), len(w.tx.wrote)
		if errs[i] = o.fn(w.tx); errs[i] != nil {
			clear(w.tx.events[appended:])
			// Its events, touches, counts and signs of life written go with it.
			w.tx.events, w.tx.touches, w.tx.counts = w.tx.events[:appended], w.tx.touches[:touched], w.tx.counts[:counted]
			w.tx.wrote = w.tx.wrote[:wrote]
			if _, err := w.tx.exec("ROLLBACK TO op"); err != nil {
				return lostTransaction(fmt.Errorf("rollback to savepoint: %w (after %w)", err, errs[i]))
			}
		}
		if _, err := w.tx.exec("RELEASE op"); err != nil {
			return lostTransaction(fmt.Errorf("release savepoint: %w", err))
		}
	}
	if err := w.tx.flushTouches(false); err != nil {
		return err
	}
	return w.tx.flushEvents()
}

// lostTransaction is the error of a batch whose savepoints are gone: SQLite
// rolled its transaction back itself, as it may on a full disk, an I/O
// error or a lack of memory. Every op of the batch failed with it, and may
// be retried.
func lostTransaction(err error) error { return unavailableFor(err) }

func (w *writer) isClosed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}

// stop lets the writer finish every op already submitted, saves the task
// counts for the next Open, then closes its connection. It reports false when the writer was already stopped.
func (w *writer) stop() (bool, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false, nil
	}
	w.closed = true
	close(w.ops)
	w.mu.Unlock()
	<-w.stopped
	errs := []error{w.sync.close(), w.counts.save(w.tx.ctx, w.conn)}
	for _, st := range w.tx.stmts {
		errs = append(errs, st.Close())
	}
	return true, errors.Join(append(errs, w.conn.Close(), w.db.Close())...)
}

// writeTx is the writer's open transaction as ops see it. Its statements
// are prepared once per query text and reused: the writer's queries are a
// fixed set, and preparing is a large part of a small op's cost.
type writeTx struct {
	ctx   context.Context
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	// events are the events appended by the batch's ops that have not
	// failed, in order, waiting for flushEvents.
	events []taskwire.Event
	// lastEvent is the seq of the newest event: committed before the
	// batch, then the one flushEvents gave the last of the batch's.
	lastEvent int64
	// touches are the signs of life of workers the same ops recorded,
	// waiting for flushTouches.
	touches []touch
	// seen holds the signs of life not written yet; wrote and kept are
	// those the batch's flushTouches wrote and kept for later.
	seen        *signsOfLife
	wrote, kept []touch
	// counts are the changes the same ops made to the number of tasks of
	// each queue and status, added to the writer's counts at commit.
	counts []countChange
}

func (t *writeTx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	st, err := t.conn.PrepareContext(t.ctx, query)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = st
	return st, nil
}

func (t *writeTx) exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

func (t *writeTx) query(query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *writeTx) queryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil {
		// The same query on the connection reports the same error.
		return t.conn.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// querier runs queries: the writer's transaction or a read transaction.
type querier interface {
	query(query string, args ...any) (*sql.Rows, error)
	queryRow(query string, args ...any) *sql.Row
}

// readTx is a read-only transaction on a read connection: every query of
// one Store call sees the same snapshot.
type readTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (t *readTx) query(query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.ctx, query, args...)
}

func (t *readTx) queryRow(query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(tx *readTx) error) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	return unavailable(fn(&readTx{ctx: ctx, tx: tx}))
}

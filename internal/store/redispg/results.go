package redispg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskwire/taskwire/internal/store"
)

// chunkSize is the most bytes one row of results holds. A result reaches
// 1 GiB, at PostgreSQL's limit for one bytea value, and pgx reads a whole
// value into memory: chunks bound what one read or write holds besides
// the caller's bytes. It is not below taskwire.ListResultLimit, so a
// result small enough for task.list rows is one chunk.
const chunkSize = 1 << 20

// stageResult commits the outcome of r's completion and its result bytes
// under r's attempt. The first outcome staged for an attempt stays: the
// result bytes stored are always those of the outcome the row names, so
// whichever completion commits in Redis, its bytes are the ones kept. A
// different outcome staged before answers a *store.ConflictError and
// touches nothing (before is the task as the caller read it); the same
// outcome again (a retry) takes the staged completion time into r.
//
// A task deleted before stages nothing (errRaced: the caller reads again
// and finds it gone), so that no result outlives its task: the staging
// holds a key-share lock on the task's row, which the delete's lock for
// update waits on (see queueTaskWrites), so either the delete commits
// first and the staging sees its tombstone, or the delete waits for the
// staging to commit and then removes its rows.
func (s *Store) stageResult(ctx context.Context, before, r *taskState, result []byte) error {
	var (
		err error
		got stagedRow
	)
	if len(result) <= chunkSize {
		// One statement stages the outcome and its bytes (no chunk for an
		// empty result) and returns the row when it was ours to insert.
		var data []byte
		if len(result) > 0 {
			data = result
		}
		b := &pgx.Batch{}
		b.Queue(stageSmall, r.ID, r.Attempt, string(r.Status), nullStr(r.Error), r.ResultSize, nullStr(r.sum),
			nullStr(r.completedBy), r.CompletedAt.UnixMilli(), data).Query(got.scan)
		err = s.group.write(ctx, b) // with other callers' writes, in one commit
		if err == nil && !got.found {
			// Staged before (a retry, a concurrent completion, which the
			// insert waited for) or the task deleted: read in a statement
			// of its own, which sees what committed meanwhile.
			err = s.bounded(ctx, func(ctx context.Context) error { return readStaged(ctx, s.pg, r, &got) })
		}
	} else {
		// The bound grows with the bytes: WriteTimeout per 64 MiB begun.
		bound := s.opts.WriteTimeout * time.Duration(1+len(result)/(64<<20))
		err = withTimeout(ctx, bound, func(ctx context.Context) error {
			return pgx.BeginFunc(ctx, s.pg, func(tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, insertStaged, r.ID, r.Attempt, string(r.Status), nullStr(r.Error),
					r.ResultSize, nullStr(r.sum), nullStr(r.completedBy), r.CompletedAt.UnixMilli())
				if err == nil && tag.RowsAffected() > 0 {
					_, err = tx.CopyFrom(ctx, pgx.Identifier{"results"}, []string{"task_id", "attempt", "seq", "data"},
						&chunks{id: r.ID, attempt: r.Attempt, b: result, seq: -1})
				} // else staged before: its chunks are there already
				if err != nil {
					return err
				}
				return readStaged(ctx, tx, r, &got)
			})
		})
	}
	if err != nil {
		return fmt.Errorf("stage result: %w", s.pgErr(err))
	}
	return checkStaged(got, before, r)
}

// insertStaged stages an outcome ($1 task, $2 attempt, $3 status, $4
// error, $5 size, $6 sum, $7 completed by, $8 completed at) unless one is
// staged under the attempt already or the task is a tombstone: it holds a
// key-share lock on the task's row (see stageResult).
const insertStaged = `INSERT INTO staged_results (task_id, attempt, status, error, size, sum, completed_by, completed_at)
	SELECT $1, $2, $3, $4, $5, $6, $7, $8
	WHERE NOT coalesce((SELECT deleted FROM tasks WHERE id = $1 FOR KEY SHARE), false)
	ON CONFLICT (task_id, attempt) DO NOTHING`

// stageSmall is insertStaged that also writes the result bytes $9 (NULL:
// none) as chunk 0, under the staged row it inserted only, and returns
// that row as selectStaged does: no row when it inserted none.
const stageSmall = `WITH staged AS (` + insertStaged + `
		RETURNING status, error, size, sum, completed_by, completed_at),
	chunk AS (INSERT INTO results (task_id, attempt, seq, data)
		SELECT $1, $2, 0, $9::bytea FROM staged WHERE $9::bytea IS NOT NULL
		ON CONFLICT DO NOTHING)
	SELECT * FROM staged`

// querier runs a query: the pool, or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readStaged reads the outcome staged under r's attempt into got.
func readStaged(ctx context.Context, q querier, r *taskState, got *stagedRow) error {
	rows, err := q.Query(ctx, selectStaged, r.ID, r.Attempt)
	if err != nil {
		return err
	}
	defer rows.Close()
	return got.scan(rows)
}

// selectStaged reads the outcome staged under an attempt.
const selectStaged = `SELECT status, error, size, sum, completed_by, completed_at
	FROM staged_results WHERE task_id = $1 AND attempt = $2`

// stagedRow is the outcome staged under an attempt, as selectStaged reads
// it.
type stagedRow struct {
	found            bool
	status           string
	errText, sum, by pgtype.Text
	size, at         int64
}

// scan reads the row of selectStaged, if there is one (a group commit run
// again reads it again: nothing of the first run stays).
func (g *stagedRow) scan(rows pgx.Rows) error {
	*g = stagedRow{}
	if rows.Next() {
		g.found = true
		if err := rows.Scan(&g.status, &g.errText, &g.size, &g.sum, &g.by, &g.at); err != nil {
			return err
		}
	}
	return rows.Err()
}

// checkStaged compares the outcome staged under r's attempt, got, with
// r's: a *store.ConflictError when another outcome was staged first,
// errRaced when none is staged any more (the task was re-run or deleted
// meanwhile).
func checkStaged(got stagedRow, before, r *taskState) error {
	if !got.found {
		return errRaced
	}
	if got.status != string(r.Status) || got.errText.String != r.Error || got.size != r.ResultSize ||
		got.sum.String != r.sum || got.by.String != r.completedBy {
		return conflict(before, "attempt %d is being completed as %s by another call", r.Attempt, got.status)
	}
	r.finalize(r.Status, r.Error, r.ResultSize, r.sum, r.completedBy, time.UnixMilli(got.at).UTC())
	return nil
}

// chunks is a pgx.CopyFromSource of the rows of a result's chunks; each
// row binds a sub-slice of the caller's bytes, no copy.
type chunks struct {
	id      string
	attempt int
	b       []byte
	seq     int
}

func (c *chunks) Next() bool {
	c.seq++
	return c.seq*chunkSize < len(c.b)
}

func (c *chunks) Values() ([]any, error) {
	off := c.seq * chunkSize
	return []any{c.id, c.attempt, c.seq, c.b[off:min(off+chunkSize, len(c.b))]}, nil
}

func (c *chunks) Err() error { return nil }

// readResult reads the whole result of task id staged under attempt,
// size bytes, into one buffer.
func (s *Store) readResult(ctx context.Context, id string, attempt int, size int64) ([]byte, error) {
	buf := make([]byte, 0, size)
	for seq := 0; int64(len(buf)) < size; seq++ {
		var err error
		if buf, err = s.readChunk(ctx, buf, id, attempt, seq); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// readChunk appends chunk seq of a result to buf, within the bound of
// one call.
func (s *Store) readChunk(ctx context.Context, buf []byte, id string, attempt, seq int) ([]byte, error) {
	var chunk []byte
	err := s.bounded(ctx, func(ctx context.Context) error {
		return s.pg.QueryRow(ctx, "SELECT data FROM results WHERE task_id = $1 AND attempt = $2 AND seq = $3",
			id, attempt, seq).Scan(&chunk)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("result of %s: chunk %d missing", id, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("result of %s: %w", id, s.pgErr(err))
	}
	return append(buf, chunk...), nil
}

// OpenResult streams the stored result of a task one chunk at a time:
// one chunk in memory, one short query each. It reads the first chunk
// before it returns, so that a PostgreSQL that cannot serve it is an
// error here, before the caller has sent a byte of the result.
func (s *Store) OpenResult(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	t, err := boundedValue(ctx, s, func(ctx context.Context) (*taskState, error) { return s.readTask(ctx, id) })
	if err != nil {
		return nil, 0, fmt.Errorf("open result of %s: %w", id, err)
	}
	if !t.Status.Final() {
		return nil, 0, fmt.Errorf("open result of %s: %w", id, store.ErrNoResult)
	}
	r := &resultReader{s: s, ctx: ctx, id: id, attempt: t.resultAttempt, left: t.ResultSize}
	if err := r.fill(); err != nil {
		return nil, 0, fmt.Errorf("open result of %s: %w", id, err)
	}
	return r, t.ResultSize, nil
}

// ResultSize implements store.Store.
func (s *Store) ResultSize(ctx context.Context, id string) (int64, error) {
	t, err := boundedValue(ctx, s, func(ctx context.Context) (*taskState, error) { return s.readTask(ctx, id) })
	switch {
	case err != nil:
		return 0, fmt.Errorf("result size of %s: %w", id, err)
	case !t.Status.Final():
		return 0, fmt.Errorf("result size of %s: %w", id, store.ErrNoResult)
	}
	return t.ResultSize, nil
}

type resultReader struct {
	s       *Store
	ctx     context.Context
	id      string
	attempt int
	seq     int
	left    int64
	buf     []byte
}

func (r *resultReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.left <= 0 {
			return 0, io.EOF
		}
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// fill reads the next chunk into the empty buffer, if any is left.
func (r *resultReader) fill() error {
	if r.left <= 0 {
		return nil
	}
	chunk, err := r.s.readChunk(r.ctx, r.buf[:0], r.id, r.attempt, r.seq)
	if err != nil {
		return err
	}
	r.seq++
	r.left -= int64(len(chunk))
	r.buf = chunk
	return nil
}

func (r *resultReader) Close() error { return nil }

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/taskwire/taskwire/internal/store"
)

// chunkSize is the most bytes one row of result_chunks holds. Results reach
// 1 GiB, over SQLite's blob limit, and a chunk bounds what one read or
// write holds in memory besides the caller's bytes. It is not below
// taskwire.ListResultLimit, so a result small enough for task.list rows is
// one chunk.
const chunkSize = 1 << 20

// writeResult stores b as the result of task id, chunk by chunk, binding
// sub-slices of b.
func writeResult(tx *writeTx, id string, b []byte) error {
	for seq, off := 0, 0; off < len(b); seq, off = seq+1, off+chunkSize {
		if _, err := tx.exec("INSERT INTO result_chunks (task_id, seq, data) VALUES (?, ?, ?)",
			id, seq, b[off:min(off+chunkSize, len(b))]); err != nil {
			return fmt.Errorf("store result chunk %d: %w", seq, err)
		}
	}
	return nil
}

// deleteResult removes the result bytes of task id.
func deleteResult(tx *writeTx, id string) error {
	_, err := tx.exec("DELETE FROM result_chunks WHERE task_id = ?", id)
	return err
}

const chunksQuery = "SELECT data FROM result_chunks WHERE task_id = ? ORDER BY seq"

// readResult reads the whole result of task id, size bytes, into one
// buffer; nil when it is empty.
func readResult(q querier, id string, size int64) (json.RawMessage, error) {
	if size == 0 {
		return nil, nil
	}
	rows, err := q.query(chunksQuery, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	buf := make([]byte, 0, size)
	for rows.Next() {
		var chunk sql.RawBytes
		if err := rows.Scan(&chunk); err != nil {
			return nil, err
		}
		if int64(len(buf)+len(chunk)) > size {
			return nil, fmt.Errorf("result is longer than its size %d", size)
		}
		buf = append(buf, chunk...)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(buf)) != size {
		return nil, fmt.Errorf("result is %d bytes, its size is %d", len(buf), size)
	}
	return buf, nil
}

// OpenResult streams the stored result of a task chunk by chunk, from one
// read snapshot: a re-run or deletion while it streams does not show. The
// reader holds a read connection until it is closed, and fails once ctx
// ends.
func (s *Store) OpenResult(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	r, size, err := s.openResult(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("open result of %s: %w", id, unavailable(err))
	}
	return r, size, nil
}

func (s *Store) openResult(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	var size int64
	var sum []byte
	err = tx.QueryRowContext(ctx, "SELECT result_size, result_sum FROM tasks WHERE id = ?", id).Scan(&size, &sum)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		err = &store.TaskNotFoundError{ID: id}
	case err == nil && sum == nil:
		err = store.ErrNoResult
	}
	var rows *sql.Rows
	if err == nil {
		rows, err = tx.QueryContext(ctx, chunksQuery, id)
	}
	if err != nil {
		_ = tx.Rollback()
		return nil, 0, err
	}
	return &resultReader{tx: tx, rows: rows, left: size}, size, nil
}

// resultReader reads a result one chunk row at a time.
type resultReader struct {
	tx    *sql.Tx
	rows  *sql.Rows
	chunk sql.RawBytes // the unread rest of the current chunk
	left  int64        // bytes not read yet
}

func (r *resultReader) Read(p []byte) (int, error) {
	for len(r.chunk) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		if !r.rows.Next() {
			if err := r.rows.Err(); err != nil {
				return 0, err
			}
			return 0, io.ErrUnexpectedEOF
		}
		if err := r.rows.Scan(&r.chunk); err != nil {
			return 0, err
		}
		if int64(len(r.chunk)) > r.left {
			return 0, errors.New("result is longer than its size")
		}
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	r.left -= int64(n)
	return n, nil
}

// Close releases the read connection.
func (r *resultReader) Close() error {
	err := r.rows.Close()
	if rerr := r.tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		err = errors.Join(err, rerr)
	}
	return err
}

// ResultSize implements store.Store.
func (s *Store) ResultSize(ctx context.Context, id string) (int64, error) {
	var size int64
	var stored bool
	err := s.read.QueryRowContext(ctx, "SELECT result_size, result_sum IS NOT NULL FROM tasks WHERE id = ?", id).Scan(&size, &stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, &store.TaskNotFoundError{ID: id}
	case err != nil:
		return 0, unavailable(err)
	case !stored:
		return 0, store.ErrNoResult
	}
	return size, nil
}

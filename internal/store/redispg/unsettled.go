package redispg

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// A create whose transition answered an error is marked in
// unsettled_creates until its outcome is settled (settleFailedCreate).
// One whose outcome stays unknown (Redis answered neither its transition
// nor the settling) answered its caller an error, so it must not make a
// task behind the caller's back; yet its row and key stay, since the
// transition may have committed. Whatever would restore the task from its
// row (the reconciler, a call that reads or changes it) settles the
// create first: a task Redis holds was made and keeps its row; any other
// is fenced off for good, and its row and key go.

// markUnsettled records that the create of task id has an unknown outcome.
func (s *Store) markUnsettled(ctx context.Context, id string) error {
	_, err := s.pg.Exec(ctx, "INSERT INTO unsettled_creates (task_id) VALUES ($1) ON CONFLICT DO NOTHING", id)
	return s.pgErr(err)
}

// unmarkUnsettled records that the create of task id was made.
func (s *Store) unmarkUnsettled(ctx context.Context, id string) error {
	_, err := s.pg.Exec(ctx, "DELETE FROM unsettled_creates WHERE task_id = $1", id)
	return s.pgErr(err)
}

// settledRow reads the row of task id as pgTask does, settling first a
// create of unknown outcome: nil when that create made no task, or was
// fenced off (fencedRow).
func (s *Store) settledRow(ctx context.Context, id string) (*taskState, error) {
	t, err := s.pgTask(ctx, id)
	if err != nil || t == nil || !unchangedCreate(t) {
		return t, err // a row changed since its create was made
	}
	gone, err := s.settleUnsettled(ctx, id)
	if err != nil || gone {
		return nil, err
	}
	if gone, err = s.fencedRow(ctx, t); err != nil || gone {
		return nil, err
	}
	return t, nil
}

// settleUnsettled settles the create of task id when its outcome is
// unknown, and reports whether it made no task; its row and key are gone
// then. A row changed since its create (a later version) shows that Redis
// held the task: the create was made.
func (s *Store) settleUnsettled(ctx context.Context, id string) (bool, error) {
	var ver int64
	err := s.pg.QueryRow(ctx, `SELECT coalesce(t.version, 0) FROM unsettled_creates u
		LEFT JOIN tasks t ON t.id = u.task_id WHERE u.task_id = $1`, id).Scan(&ver)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.pgErr(err)
	}
	made := ver != 1
	if ver == 1 {
		if made, err = s.settleCreate(ctx, id); err != nil {
			return false, err
		}
	}
	b := &pgx.Batch{}
	if !made {
		b.Queue("DELETE FROM idempotency_keys WHERE task_id = $1", id)
		b.Queue("DELETE FROM tasks WHERE id = $1 AND version = 1", id)
	}
	b.Queue("DELETE FROM unsettled_creates WHERE task_id = $1", id)
	if err := s.pg.SendBatch(ctx, b).Close(); err != nil {
		return false, s.pgErr(err)
	}
	return !made, nil
}

// settleAllUnsettled settles every create of unknown outcome.
func (s *Store) settleAllUnsettled(ctx context.Context) error {
	for {
		rows, err := s.pg.Query(ctx, "SELECT task_id FROM unsettled_creates ORDER BY task_id LIMIT $1", reconcilePage)
		if err != nil {
			return s.pgErr(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return s.pgErr(err)
		}
		if len(ids) == 0 {
			return nil
		}
		for _, id := range ids {
			if _, err := s.settleUnsettled(ctx, id); err != nil {
				return err
			}
		}
	}
}

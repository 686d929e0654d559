package redispg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire"
)

// reconcileGrace is how long the reconciler leaves a row PostgreSQL has
// just written alone: a create commits its row before Redis knows it.
const reconcileGrace = 2 * time.Second

// reconcilePage is how many rows the reconciler checks per round trip.
const reconcilePage = 1000

// reconcileLoop reconciles on start and then every ReconcileInterval, in
// the one process that holds the reconciler lease in Redis.
func (s *Store) reconcileLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if s.holdLease(ctx) {
			if n, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reconcile", "err", err)
			} else if n > 0 {
				s.log.Info("reconcile: restored tasks Redis did not hold", "tasks", n)
			}
		}
		pause(ctx, s.opts.ReconcileInterval)
	}
}

// holdLease takes or renews the reconciler lease, which lasts three
// intervals, so that a dead holder is replaced soon.
func (s *Store) holdLease(ctx context.Context) bool {
	ttl := 3 * s.opts.ReconcileInterval
	ok, err := s.rdb.SetNX(ctx, s.k.reconcileLease(), s.consumer, ttl).Result()
	if err != nil {
		return false
	}
	if ok {
		return true
	}
	holder, err := s.rdb.Get(ctx, s.k.reconcileLease()).Result()
	if err != nil || holder != s.consumer {
		return false
	}
	return s.rdb.PExpire(ctx, s.k.reconcileLease(), ttl).Err() == nil
}

// eventSeqGap is how far above its last saved mark the event counter
// starts again after Redis lost it: more events than one reconcile
// interval appends.
const eventSeqGap = 10_000_000

// keepEventSeq saves the event counter's high-water mark in PostgreSQL,
// and raises a counter that fell below it, or sets a missing one (Redis
// lost its data), past the mark plus eventSeqGap, so that no event id is
// issued twice and readers resuming from an old id go on from the oldest
// event kept. A brand-new deployment (no mark yet) starts at 0: its
// counter is set before its mark is saved, and the mark is read before
// the counter, so that a process finding the mark another one just saved
// finds that one's counter too, not a counter Redis lost. The scripts
// append no event while the counter is missing.
func (s *Store) keepEventSeq(ctx context.Context) error {
	var marked bool
	err := s.pg.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM counters WHERE name = 'events')").Scan(&marked)
	if err != nil {
		return s.pgErr(err)
	}
	cur, err := s.rdb.Get(ctx, s.k.eventSeq()).Int64()
	missing := errors.Is(err, redis.Nil)
	if err != nil && !missing {
		return s.redisErr(err)
	}
	if missing && !marked { // a brand-new deployment
		if cur, err = s.scripts.raise.Run(ctx, s.rdb, []string{s.k.eventSeq()}, 0).Int64(); err != nil {
			return s.redisErr(err)
		}
		missing = false
	}
	var saved int64
	err = s.pg.QueryRow(ctx, `INSERT INTO counters (name, value) VALUES ('events', $1)
		ON CONFLICT (name) DO UPDATE SET value = greatest(counters.value, excluded.value)
		RETURNING value`, cur).Scan(&saved)
	if err != nil {
		return s.pgErr(err)
	}
	if !missing && cur >= saved {
		return nil
	}
	raised, err := s.scripts.raise.Run(ctx, s.rdb, []string{s.k.eventSeq()}, saved+eventSeqGap).Int64()
	if err != nil {
		return s.redisErr(err)
	}
	s.log.Warn("redis lost its event counter: raised past the saved mark", "from", cur, "to", raised)
	return nil
}

// Reconcile puts back into Redis every unfinished task that PostgreSQL
// holds and Redis does not (after a FLUSHALL, or a restart of Redis
// without persistence), and returns how many it restored: see restore.
// It first sets the event counter again when Redis lost it (keepEventSeq),
// and settles the creates of unknown outcome (settleAllUnsettled), whose
// tasks it never restores.
func (s *Store) Reconcile(ctx context.Context) (int, error) {
	if err := s.keepEventSeq(ctx); err != nil {
		return 0, fmt.Errorf("event counter: %w", err)
	}
	if err := s.settleAllUnsettled(ctx); err != nil {
		return 0, fmt.Errorf("settle creates: %w", err)
	}
	restored, after := 0, ""
	for {
		rows, err := s.pg.Query(ctx, "SELECT "+taskColumns+` FROM tasks
			WHERE NOT deleted AND status IN ('pending', 'in_progress') AND id > $1
			AND written_at < now() - $2::interval
			AND NOT EXISTS (SELECT 1 FROM unsettled_creates u WHERE u.task_id = tasks.id)
			ORDER BY id LIMIT $3`,
			after, fmt.Sprintf("%d milliseconds", reconcileGrace.Milliseconds()), reconcilePage)
		if err != nil {
			return restored, s.pgErr(err)
		}
		tasks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*taskState, error) { return scanTaskRow(r) })
		if err != nil {
			return restored, s.pgErr(err)
		}
		if len(tasks) == 0 {
			return restored, nil
		}
		after = tasks[len(tasks)-1].ID
		n, err := s.restoreMissing(ctx, tasks)
		restored += n
		if err != nil {
			return restored, err
		}
	}
}

// restoreMissing restores those of tasks that Redis does not hold, but
// for the rows of creates fenced off, which it takes back.
func (s *Store) restoreMissing(ctx context.Context, tasks []*taskState) (int, error) {
	pipe := s.rdb.Pipeline()
	held := make([]*redis.IntCmd, len(tasks))
	fenced := make([]*redis.IntCmd, len(tasks))
	for i, t := range tasks {
		held[i] = pipe.Exists(ctx, s.k.task(t.ID))
		fenced[i] = pipe.Exists(ctx, s.k.createFence(t.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, s.redisErr(err)
	}
	n, restoreNo := 0, int64(0)
	for i, t := range tasks {
		if held[i].Val() == 1 {
			continue
		}
		if fenced[i].Val() == 1 && unchangedCreate(t) {
			s.forget(ctx, t.ID)
			continue
		}
		if restoreNo == 0 { // one number serves every task of this pass
			var err error
			if restoreNo, err = s.nextRestore(ctx); err != nil {
				return n, err
			}
		}
		if err := s.restore(ctx, t, restoreNo); err != nil && !errors.Is(err, errRaced) {
			return n, fmt.Errorf("restore %s: %w", t.ID, err)
		}
		n++
	}
	return n, nil
}

// restore writes task t, as PostgreSQL holds it, into Redis, unless Redis
// holds it meanwhile. A completion staged for its attempt finalizes it
// (the completion was acknowledged, its row had not been written yet); an
// in_progress task goes back to pending, attempt kept (its claim and lease
// lived in Redis); a pending task keeps its reservation (task.assign
// acknowledged it), even for a worker Redis does not know until it
// registers again: no other worker takes it, and an admin may unassign
// it. A pending task goes to the delayed set, from which the next claim
// moves it once due into its worker's reserved set or its queue (the
// store reads no clock). Its version is above every version Redis issued
// it before (see nextRestore; restoreNo is the number it gave this
// restore). The new state reaches PostgreSQL through the outbox.
func (s *Store) restore(ctx context.Context, t *taskState, restoreNo int64) error {
	r := t.clone()
	if !r.Status.Final() {
		staged, err := s.stagedOutcome(ctx, r)
		if err != nil {
			return err
		}
		if !staged && r.Status == taskwire.StatusInProgress {
			r.requeue()
		}
	}
	x := s.txn()
	x.check(s.k.task(r.ID), 0)
	x.check(s.k.createFence(r.ID), 0) // a create settled as not made: its row goes
	x.check(s.k.deletion(r.ID), 0)    // deleted; PostgreSQL lacks the tombstone yet
	r.ver = max(t.ver+1, restoreNo<<restoreShift)
	x.Put = append(x.Put, put{K: s.k.task(r.ID), F: r.fields()})
	x.place(r, time.Time{})
	x.Ready = true
	x.Outbox = append(x.Outbox, r.ID)
	return s.apply(ctx, x)
}

// restoreShift places the versions of each restore in a range of their
// own: a task goes through fewer than 2^32 changes between two restores.
const restoreShift = 32

// nextRestore numbers a restore of tasks from their rows. Redis may have
// issued a task newer versions before it lost its data, which PostgreSQL
// may still receive: a persister, or a caller, that read the task from
// Redis before the loss writes it after the restore. The restored task
// must outrank them all, so that PostgreSQL ignores such a late write and
// takes the task's next changes: its version is above its row's and at
// least the restore's number, taken anew from PostgreSQL for each pass
// of restores, shifted by restoreShift (every version issued before
// counts from an earlier restore, or from the task's create).
func (s *Store) nextRestore(ctx context.Context) (int64, error) {
	var n int64
	err := s.pg.QueryRow(ctx, `INSERT INTO counters (name, value) VALUES ('restores', 1)
		ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`).Scan(&n)
	if err != nil {
		return 0, s.pgErr(err)
	}
	return n, nil
}

// stagedOutcome finalizes r from the completion staged under its attempt
// or a later one (PostgreSQL may not have the claim yet), if there is
// one, and reports whether there was.
func (s *Store) stagedOutcome(ctx context.Context, r *taskState) (bool, error) {
	var (
		status           string
		errText, sum, by pgtype.Text
		size, at         int64
	)
	var attempt int
	err := s.pg.QueryRow(ctx, `SELECT attempt, status, error, size, sum, completed_by, completed_at
		FROM staged_results WHERE task_id = $1 AND attempt >= $2 ORDER BY attempt DESC LIMIT 1`, r.ID, r.Attempt).
		Scan(&attempt, &status, &errText, &size, &sum, &by, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.pgErr(err)
	}
	r.Attempt = attempt
	r.finalize(taskwire.Status(status), errText.String, size, sum.String, by.String, time.UnixMilli(at).UTC())
	return true, nil
}

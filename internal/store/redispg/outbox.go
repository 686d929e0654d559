package redispg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// The outbox is a Redis stream of the task ids whose state changed in
// Redis alone (claims, lease renewals, expiries, completions): each entry's
// field "id" holds those of one script run, separated by commas (a task
// id, "t-" and a ULID, holds none). Every process runs a persister in one
// consumer group: it reads entries, copies the current Redis state of
// their tasks to PostgreSQL in one batch (a row is replaced only by a
// newer version, so entries may be applied twice, late, or in any order),
// then acknowledges and deletes them. Entries a dead process
// had read are claimed by another after outboxIdle.
const (
	outboxGroup = "persist"
	outboxIdle  = 30 * time.Second
)

// ensureGroup creates the outbox's consumer group (and stream) unless it
// exists; after a loss of Redis the persister calls it again.
func (s *Store) ensureGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.k.outbox(), outboxGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("outbox group: %w", s.redisErr(err))
	}
	return nil
}

// persistLoop applies the outbox until ctx ends; a failed batch is tried
// again after a pause (PostgreSQL down: the entries wait in Redis).
func (s *Store) persistLoop(ctx context.Context) {
	lastClaim := time.Now()
	for ctx.Err() == nil {
		var msgs []redis.XMessage
		var err error
		if time.Since(lastClaim) > outboxIdle/3 {
			lastClaim = time.Now()
			msgs, _, err = s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: s.k.outbox(), Group: outboxGroup,
				Consumer: s.consumer, MinIdle: outboxIdle, Start: "0-0", Count: int64(s.opts.PersistBatch)}).Result()
		} else {
			msgs, err = s.readOutbox(ctx, s.opts.PersistBatch, outboxBlock)
			if err == nil && len(msgs) > 0 && len(msgs) < s.opts.PersistBatch {
				// Let the batch fill: the later changes of the same tasks
				// (a claim, then its completion) come in, and one row write
				// takes each task's latest state.
				pause(ctx, persistLinger)
				var more []redis.XMessage
				more, err = s.readOutbox(ctx, s.opts.PersistBatch-len(msgs), -1)
				msgs = append(msgs, more...)
			}
		}
		if err == nil && len(msgs) > 0 {
			err = s.persistUntilDone(ctx, msgs)
		}
		if err != nil && ctx.Err() == nil {
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				err = s.ensureGroup(ctx)
			}
			if err != nil {
				s.log.Warn("outbox persister", "err", err)
			}
			pause(ctx, time.Second)
		}
	}
}

// outboxBlock is how long one read of the outbox waits for entries: short,
// because Close waits for a read in progress to end.
const outboxBlock = 250 * time.Millisecond

// persistLinger is how long the persister lets a batch that is not full
// fill before it applies it.
const persistLinger = 50 * time.Millisecond

// readOutbox reads up to n new entries for this consumer, waiting up to
// block (not at all when negative).
func (s *Store) readOutbox(ctx context.Context, n int, block time.Duration) ([]redis.XMessage, error) {
	streams, err := s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: outboxGroup, Consumer: s.consumer,
		Streams: []string{s.k.outbox(), ">"}, Count: int64(n), Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil || len(streams) == 0 {
		return nil, err
	}
	return streams[0].Messages, nil
}

// persistUntilDone applies msgs, trying again while PostgreSQL fails, then
// acknowledges and deletes them.
func (s *Store) persistUntilDone(ctx context.Context, msgs []redis.XMessage) error {
	for {
		err := s.persist(ctx, msgs)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return err
		}
		s.log.Warn("outbox: postgres write failed, retrying", "entries", len(msgs), "err", err)
		pause(ctx, time.Second)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	pipe := s.rdb.Pipeline()
	pipe.XAck(ctx, s.k.outbox(), outboxGroup, ids...)
	pipe.XDel(ctx, s.k.outbox(), ids...)
	_, err := pipe.Exec(ctx)
	return s.redisErr(err)
}

// persist copies the current Redis state of the tasks msgs name to
// PostgreSQL in one statement (a row per task, see upsertTaskRows). A
// task Redis no longer holds was deleted or lost: deleted, its deletion
// mark (see txn.deleteTask) has its tombstone written, again if its
// deleter's commit did, and the mark removed; lost, the reconciler
// restores it.
func (s *Store) persist(ctx context.Context, msgs []redis.XMessage) error {
	var ids []string
	for _, m := range msgs {
		if v, ok := m.Values["id"].(string); ok {
			ids = append(ids, strings.Split(v, ",")...)
		}
	}
	slices.Sort(ids) // one lock order for every batch
	ids = slices.Compact(ids)
	tasks, err := s.getTasks(ctx, ids)
	if err != nil {
		return err
	}
	deleted, err := s.markedDeleted(ctx, ids, tasks)
	if err != nil || len(tasks)+len(deleted) == 0 {
		return err
	}
	b := &pgx.Batch{}
	if len(tasks) > 0 {
		if err := queueTaskRows(b, tasks); err != nil {
			return err
		}
	}
	queueTaskWrites(b, nil, deleted)
	if err := s.pg.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("persist %d tasks: %w", len(tasks)+len(deleted), s.pgErr(err))
	}
	if len(deleted) == 0 {
		return nil
	}
	marks := make([]string, len(deleted))
	for i, id := range deleted {
		marks[i] = s.k.deletion(id)
	}
	// A mark left behind expires; the tombstone already keeps the task
	// from the reconciler.
	return s.redisErr(s.rdb.Del(ctx, marks...).Err())
}

// markedDeleted returns those of ids that Redis does not hold (held are
// the tasks it does) and that carry a deletion mark.
func (s *Store) markedDeleted(ctx context.Context, ids []string, held []*taskState) ([]string, error) {
	if len(held) == len(ids) {
		return nil, nil
	}
	isHeld := make(map[string]bool, len(held))
	for _, t := range held {
		isHeld[t.ID] = true
	}
	var gone []string
	for _, id := range ids {
		if !isHeld[id] {
			gone = append(gone, id)
		}
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(gone))
	for i, id := range gone {
		cmds[i] = pipe.Exists(ctx, s.k.deletion(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.redisErr(err)
	}
	var marked []string
	for i, id := range gone {
		if cmds[i].Val() == 1 {
			marked = append(marked, id)
		}
	}
	return marked, nil
}

// flushOutbox applies every entry the outbox holds now, without taking
// them from the persisters: after it, PostgreSQL holds every change Redis
// had acknowledged before the call. ListTasks and Stats call it first.
func (s *Store) flushOutbox(ctx context.Context) error {
	start := "-"
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.k.outbox(), start, "+", int64(s.opts.PersistBatch)).Result()
		if err != nil {
			return s.redisErr(err)
		}
		if len(msgs) == 0 {
			return nil
		}
		if err := s.persist(ctx, msgs); err != nil {
			return err
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package redispg

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// The most one sweep does; what is left is for the next (SweepResult.More).
const (
	sweepMaxWorkers = 200
	sweepMaxTasks   = 1000
	sweepMaxEvents  = 50_000
	trimPage        = 1000
)

// Sweep runs one sweep by the rules of store.Lifecycle.Sweep. Each silent
// worker and each expired lease is one transition, decided from what it
// read and committed only if that is unchanged, so processes sweeping at
// once never apply one expiry twice. The changes reach PostgreSQL through
// the outbox.
func (s *Store) Sweep(ctx context.Context, p store.SweepParams) (*store.SweepResult, error) {
	now := truncMs(p.Now)
	res := &store.SweepResult{}
	if p.WorkerTimeout > 0 {
		if err := s.sweepWorkers(ctx, now, now.Add(-p.WorkerTimeout), res); err != nil {
			return nil, fmt.Errorf("sweep workers: %w", err)
		}
	}
	if err := s.expireLeases(ctx, now, res); err != nil {
		return nil, fmt.Errorf("sweep leases: %w", err)
	}
	if err := s.trimEvents(ctx, now, p, res); err != nil {
		return nil, fmt.Errorf("sweep events: %w", err)
	}
	next, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: s.k.delayed(),
		Start: "(" + strconv.FormatInt(now.UnixMilli(), 10), Stop: "+inf", ByScore: true, Count: 1}).Result()
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", s.redisErr(err))
	}
	if len(next) > 0 {
		res.NextRunAt = time.UnixMilli(int64(next[0].Score)).UTC()
	}
	return res, nil
}

// due returns up to n members of sorted set key scored at or before at.
func (s *Store) due(ctx context.Context, key string, at time.Time, n int) ([]string, error) {
	ids, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: key, Start: "-inf",
		Stop: strconv.FormatInt(at.UnixMilli(), 10), ByScore: true, Count: int64(n)}).Result()
	return ids, s.redisErr(err)
}

// sweepWorkers marks offline the online workers last seen at or before
// seen; their in_progress tasks go back (or fail on their last attempt)
// and their reservations are released, in one transition per worker.
func (s *Store) sweepWorkers(ctx context.Context, now, seen time.Time, res *store.SweepResult) error {
	ids, err := s.due(ctx, s.k.seen(), seen, sweepMaxWorkers)
	if err != nil {
		return err
	}
	res.More = res.More || len(ids) == sweepMaxWorkers
	for _, id := range ids {
		err := retry(ctx, func() error {
			w, err := s.getWorker(ctx, id)
			if err != nil || w == nil || w.Status != taskwire.WorkerOnline || w.LastSeen.After(seen) {
				return err
			}
			held, err := s.heldTasks(ctx, id)
			if err != nil {
				return err
			}
			x := s.txn()
			lastSeen := w.LastSeen
			w.Status = taskwire.WorkerOffline
			x.saveWorker(w)
			x.emit(store.WorkerOfflineEvent(id, lastSeen, now))
			requeued, failed := x.release(w, held, store.RequeueWorkerOffline, store.SystemActor, now)
			if err := s.apply(ctx, x); err != nil {
				return err
			}
			res.WorkersOffline++
			res.Requeued += requeued
			res.Failed += failed
			return nil
		})
		if err != nil {
			return fmt.Errorf("worker %s: %w", id, err)
		}
	}
	return nil
}

// expireLeases returns the in_progress tasks whose lease has expired to
// pending, or fails those on their last attempt.
func (s *Store) expireLeases(ctx context.Context, now time.Time, res *store.SweepResult) error {
	ids, err := s.due(ctx, s.k.leases(), now, sweepMaxTasks)
	if err != nil {
		return err
	}
	res.More = res.More || len(ids) == sweepMaxTasks
	for _, id := range ids {
		err := retry(ctx, func() error {
			t, err := s.redisTask(ctx, id)
			if err != nil {
				return err
			}
			if s.leaseRead != nil {
				s.leaseRead(id)
			}
			if t == nil || t.Status != taskwire.StatusInProgress || t.LeaseExpiresAt.After(now) {
				return s.settleLease(ctx, id) // a stale entry, or a lease renewed since
			}
			w, err := s.getWorker(ctx, t.AssignedTo)
			if err != nil {
				return err
			}
			x := s.txn()
			r := t.clone()
			reason := store.RequeueLeaseExpired
			if w == nil || w.Status != taskwire.WorkerOnline {
				reason = store.RequeueWorkerOffline
			}
			failed := t.Attempt >= t.MaxAttempts
			if failed {
				r.finalize(taskwire.StatusFailed, store.LastAttemptError(reason, t.Attempt), 0, "", store.SystemActor, now)
				x.saveTask(t, r, now)
				x.emit(store.TaskCompletedEvent(r.Task, store.SystemActor))
			} else {
				r.requeue()
				r.UpdatedAt = now
				x.saveTask(t, r, now)
				x.emit(store.TaskRequeuedEvent(id, t.AssignedTo, t.Attempt, reason, store.SystemActor, now))
			}
			if err := s.apply(ctx, x); err != nil {
				return err
			}
			if failed {
				res.Failed++
			} else {
				res.Requeued++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("task %s: %w", id, err)
		}
	}
	return nil
}

// settleLeaseLua sets the entry of task ARGV[1] in the leases set
// (KEYS[1]) from the task's hash (KEYS[2]) as it is when the script runs:
// its lease while it is in_progress, else no entry.
var settleLeaseLua = redis.NewScript(`
local h = redis.call('HMGET', KEYS[2], 'st', 'lease')
if h[1] == 'in_progress' and h[2] and h[2] ~= '' then
  redis.call('ZADD', KEYS[1], h[2], ARGV[1])
  return 0
end
return redis.call('ZREM', KEYS[1], ARGV[1])
`)

// settleLease makes the leases entry of task id match the task, in one
// step: the sweep read the task gone, not in_progress or with a lease
// not yet expired, but a heartbeat (or a claim) may have renewed it
// since, and removing the entry then would leave that lease never to
// expire.
func (s *Store) settleLease(ctx context.Context, id string) error {
	err := settleLeaseLua.Run(ctx, s.rdb, []string{s.k.leases(), s.k.task(id)}, id).Err()
	return s.redisErr(err)
}

// trimEvents drops events from the oldest end of the log: those beyond the
// newest MaxEvents and those older than Now - EventRetention, at most
// sweepMaxEvents.
func (s *Store) trimEvents(ctx context.Context, now time.Time, p store.SweepParams, res *store.SweepResult) error {
	if p.EventRetention <= 0 && p.MaxEvents <= 0 {
		return nil
	}
	last, err := s.rdb.Get(ctx, s.k.eventSeq()).Int64()
	if err == redis.Nil {
		return nil
	}
	if err != nil {
		return s.redisErr(err)
	}
	first, err := s.rdb.XRangeN(ctx, s.k.events(), "-", "+", 1).Result()
	if err != nil || len(first) == 0 {
		return s.redisErr(err)
	}
	firstSeq := seqOf(first[0].ID)
	bound := firstSeq + sweepMaxEvents - 1
	upTo := int64(0) // drop the events with seq <= upTo
	if p.MaxEvents > 0 {
		upTo = last - int64(p.MaxEvents)
	}
	if p.EventRetention > 0 {
		old, err := s.oldUpTo(ctx, now.Add(-p.EventRetention), firstSeq, bound)
		if err != nil {
			return err
		}
		upTo = max(upTo, old)
	}
	if upTo > bound {
		upTo, res.More = bound, true
	}
	if upTo < firstSeq {
		return nil
	}
	n, err := s.rdb.XTrimMinID(ctx, s.k.events(), strconv.FormatInt(upTo+1, 10)+"-0").Result()
	res.EventsDropped = int(n)
	return s.redisErr(err)
}

// oldUpTo returns the last seq of the run of events older than cutoff
// that starts the log, looking no further than seq bound.
func (s *Store) oldUpTo(ctx context.Context, cutoff time.Time, first, bound int64) (int64, error) {
	upTo, start := first-1, "-"
	for upTo < bound {
		msgs, err := s.rdb.XRangeN(ctx, s.k.events(), start, strconv.FormatInt(bound, 10)+"-0", trimPage).Result()
		if err != nil {
			return 0, s.redisErr(err)
		}
		for _, m := range msgs {
			if ev := eventFromEntry(m); ev.Timestamp >= cutoff.UnixMilli() {
				return upTo, nil
			}
			upTo = seqOf(m.ID)
		}
		if len(msgs) < trimPage {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return upTo, nil
}

// seqOf is the sequence number of an event stream entry id "seq-0".
func seqOf(id string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(id, "-0"), 10, 64)
	return n
}

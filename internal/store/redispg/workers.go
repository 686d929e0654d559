package redispg

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// workerState is a registered worker as the store keeps it.
type workerState struct {
	taskwire.Worker
	ver int64
}

func (w *workerState) fields() map[string]string {
	roles, _ := json.Marshal(nonNil(w.Roles)) // strings: cannot fail
	queues, _ := json.Marshal(nonNil(w.Queues))
	f := map[string]string{"id": w.ID, "st": string(w.Status), "roles": string(roles),
		"queues": string(queues), "reg": msString(w.RegisteredAt), "seen": msString(w.LastSeen),
		"ver": strconv.FormatInt(w.ver, 10)}
	if len(w.Metadata) > 0 && string(w.Metadata) != "null" {
		f["meta"] = string(w.Metadata)
	}
	return f
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// workerFromHash decodes a worker hash; nil for an empty one.
func workerFromHash(h map[string]string) (*workerState, error) {
	if len(h) == 0 {
		return nil, nil
	}
	w := &workerState{Worker: taskwire.Worker{ID: h["id"], Status: taskwire.WorkerStatus(h["st"])}}
	if err := json.Unmarshal([]byte(h["roles"]), &w.Roles); err != nil {
		return nil, fmt.Errorf("worker %s roles: %w", w.ID, err)
	}
	if err := json.Unmarshal([]byte(h["queues"]), &w.Queues); err != nil {
		return nil, fmt.Errorf("worker %s queues: %w", w.ID, err)
	}
	if m := h["meta"]; m != "" {
		w.Metadata = json.RawMessage(m)
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"reg", &w.RegisteredAt}, {"seen", &w.LastSeen}} {
		v, err := optInt(h, f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = time.UnixMilli(v).UTC()
	}
	var err error
	w.ver, err = optInt(h, "ver")
	return w, err
}

// saveWorker writes w, read at its version, with its version plus one.
func (x *txn) saveWorker(w *workerState) {
	key := x.k.worker(w.ID)
	x.check(key, w.ver)
	w.ver++
	x.Put = append(x.Put, put{K: key, F: pairsOf(w.fields())})
	x.Sadd = append(x.Sadd, zmember{K: x.k.workers(), M: w.ID})
	if w.Status == taskwire.WorkerOnline {
		x.Zadd = append(x.Zadd, zmember{K: x.k.seen(), S: msString(w.LastSeen), M: w.ID})
	} else {
		x.Zrem = append(x.Zrem, zmember{K: x.k.seen(), M: w.ID})
	}
}

// getWorker reads worker id; nil when it is not registered.
func (s *Store) getWorker(ctx context.Context, id string) (*workerState, error) {
	if id == "" {
		return nil, nil
	}
	h, err := s.readHash(ctx, s.k.worker(id))
	if err != nil {
		return nil, err
	}
	return workerFromHash(h)
}

// RegisterWorker creates or refreshes a worker; it is online afterwards,
// its first registration time kept.
func (s *Store) RegisterWorker(ctx context.Context, p store.RegisterWorkerParams) error {
	now := truncMs(p.Now)
	err := s.boundedRetry(ctx, func(ctx context.Context) error {
		w, err := s.getWorker(ctx, p.ID)
		if err != nil {
			return err
		}
		if w == nil {
			w = &workerState{Worker: taskwire.Worker{ID: p.ID, RegisteredAt: now}}
		}
		w.Status, w.Roles, w.Queues, w.Metadata, w.LastSeen = taskwire.WorkerOnline, p.Roles, p.Queues, p.Metadata, now
		x := s.txn()
		x.saveWorker(w)
		x.emit(store.WorkerRegisteredEvent(p.ID, p.Queues, p.Roles, p.By, now))
		return s.apply(ctx, x)
	})
	if err != nil {
		return fmt.Errorf("register worker %s: %w", p.ID, err)
	}
	return nil
}

// HeartbeatWorker records that an online worker is alive and renews the
// leases of its in_progress tasks (heartbeat.lua); an offline worker gets
// false.
func (s *Store) HeartbeatWorker(ctx context.Context, p store.HeartbeatWorkerParams) (bool, error) {
	n, err := boundedValue(ctx, s, func(ctx context.Context) (int, error) {
		n, err := s.scripts.heartbeat.Run(ctx, s.rdb,
			[]string{s.k.worker(p.ID), s.k.held(p.ID), s.k.leases(), s.k.seen(), s.k.outbox()},
			p.Now.UnixMilli(), p.ID, s.k.taskPrefix()).Int()
		return n, s.redisErr(err)
	})
	switch {
	case err != nil:
		return false, fmt.Errorf("heartbeat of %s: %w", p.ID, err)
	case n < 0:
		return false, fmt.Errorf("heartbeat: %w", &store.WorkerNotFoundError{ID: p.ID})
	}
	return n == 1, nil
}

// heldTasks reads the unfinished tasks held by worker id.
func (s *Store) heldTasks(ctx context.Context, id string) ([]*taskState, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.held(id)).Result()
	if err != nil {
		return nil, s.redisErr(err)
	}
	return s.getTasks(ctx, ids)
}

// release adds to x what a worker leaving (unregistered or offline) does
// to the tasks it holds: in_progress ones go back to pending (event
// task.requeued with reason) or, on their last attempt, fail with error
// "<reason> after N attempts" (event task.completed); reserved ones lose
// their reservation
// (task.unassigned). It returns how many went back to pending and how
// many failed.
func (x *txn) release(w *workerState, held []*taskState, reason, by string, now time.Time) (requeued, failed int) {
	for _, t := range held {
		if t.AssignedTo != w.ID || t.Status.Final() {
			continue
		}
		after := t.clone()
		switch {
		case t.Status == taskwire.StatusPending:
			after.AssignedTo, after.UpdatedAt = "", now
			x.saveTask(t, after, now)
			x.emit(store.TaskUnassignedEvent(t.ID, w.ID, by, now))
		case t.Attempt >= t.MaxAttempts:
			after.finalize(taskwire.StatusFailed, store.LastAttemptError(reason, t.Attempt), 0, "", by, now)
			x.saveTask(t, after, now)
			x.emit(store.TaskCompletedEvent(after.Task, by))
			failed++
		default:
			after.requeue()
			after.UpdatedAt = now
			x.saveTask(t, after, now)
			x.emit(store.TaskRequeuedEvent(t.ID, w.ID, t.Attempt, reason, by, now))
			requeued++
		}
	}
	return requeued, failed
}

// UnregisterWorker removes a worker: its in_progress tasks go back to
// pending (attempt kept), or fail when on their last attempt, and its
// reservations are cleared, in one transition.
func (s *Store) UnregisterWorker(ctx context.Context, p store.UnregisterWorkerParams) (int, error) {
	now := truncMs(p.Now)
	requeued := 0
	err := s.boundedRetry(ctx, func(ctx context.Context) error {
		w, err := s.getWorker(ctx, p.ID)
		if err != nil {
			return err
		}
		if w == nil {
			return &store.WorkerNotFoundError{ID: p.ID}
		}
		held, err := s.heldTasks(ctx, p.ID)
		if err != nil {
			return err
		}
		x := s.txn()
		requeued, _ = x.release(w, held, store.RequeueUnregistered, p.By, now)
		x.check(s.k.worker(p.ID), w.ver)
		x.Del = append(x.Del, s.k.worker(p.ID), s.k.held(p.ID))
		x.Srem = append(x.Srem, zmember{K: s.k.workers(), M: p.ID})
		x.Zrem = append(x.Zrem, zmember{K: s.k.seen(), M: p.ID})
		x.emit(store.WorkerUnregisteredEvent(p.ID, requeued, p.By, now))
		// Wakes the long polls of every process: the worker's own end
		// (it is no longer registered), the others wait again.
		x.Ready = true
		return s.persistThenApply(ctx, x, nil)
	})
	if err != nil {
		return 0, fmt.Errorf("unregister worker %s: %w", p.ID, err)
	}
	return requeued, nil
}

// ListWorkers returns every registered worker, ordered by id, with the
// ids of its in_progress tasks oldest first (creation time, then id).
func (s *Store) ListWorkers(ctx context.Context) ([]taskwire.Worker, error) {
	return boundedValue(ctx, s, s.listWorkers)
}

func (s *Store) listWorkers(ctx context.Context) ([]taskwire.Worker, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.workers()).Result()
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", s.redisErr(err))
	}
	slices.Sort(ids)
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, s.k.worker(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list workers: %w", s.redisErr(err))
	}
	out := make([]taskwire.Worker, 0, len(ids))
	for _, h := range hashes {
		w, err := workerFromHash(h.Val())
		if err != nil || w == nil {
			continue // unregistered meanwhile
		}
		held, err := s.heldTasks(ctx, w.ID)
		if err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		slices.SortFunc(held, func(a, b *taskState) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
		})
		for _, t := range held {
			if t.Status == taskwire.StatusInProgress && t.AssignedTo == w.ID {
				w.Tasks = append(w.Tasks, t.ID)
			}
		}
		out = append(out, w.Worker)
	}
	return out, nil
}

package redispg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// txn is one state transition decided in Go from state read from Redis,
// committed by apply.lua only if that state is unchanged (see the
// script's header for each member, and encode for its arguments).
type txn struct {
	Checks []check
	Put    []put
	Mark   []mark
	Del    []string
	Bump   []string
	Zadd   []zmember
	Zrem   []zmember
	Sadd   []zmember
	Srem   []zmember
	Events []eventArgs
	Outbox []string
	Touch  []touch
	Ready  bool

	k keys
	// saved and deleted are the tasks the transition writes and removes,
	// for PostgreSQL.
	saved   []*taskState
	deleted []string
}

type check struct{ K, V string }

// mark is a hash {ver: 1} that expires after MS milliseconds: a fence.
type mark struct {
	K  string
	MS int64
}

type put struct {
	K string
	F []string // name, value pairs
}

// pairsOf flattens the fields m into name, value pairs.
func pairsOf(m map[string]string) []string {
	f := make([]string, 0, 2*len(m))
	for k, v := range m {
		f = append(f, k, v)
	}
	return f
}

type zmember struct{ K, S, M string }

type touch struct{ K, S, Z, M string }

type eventArgs struct{ Type, Task, Payload, Meta, TS string }

// encode appends x to args in the form apply.lua reads: the number of
// arguments that follow the two of the header, whether x appends events,
// then its operations in the order the script runs them, each an opcode
// and its operands.
func (x *txn) encode(args []any) []any {
	head := len(args)
	hasEvents := "0"
	if len(x.Events) > 0 {
		hasEvents = "1"
	}
	args = append(args, 0, hasEvents)
	for _, c := range x.Checks {
		args = append(args, "c", c.K, c.V)
	}
	for _, k := range x.Del {
		args = append(args, "d", k)
	}
	for _, p := range x.Put {
		args = append(args, "p", p.K, len(p.F))
		for _, f := range p.F {
			args = append(args, f)
		}
	}
	for _, m := range x.Mark {
		args = append(args, "m", m.K, m.MS)
	}
	for _, k := range x.Bump {
		args = append(args, "b", k)
	}
	for _, z := range x.Zrem {
		args = append(args, "zr", z.K, z.M)
	}
	for _, z := range x.Zadd {
		args = append(args, "za", z.K, z.S, z.M)
	}
	for _, z := range x.Srem {
		args = append(args, "sr", z.K, z.M)
	}
	for _, z := range x.Sadd {
		args = append(args, "sa", z.K, z.M)
	}
	for _, t := range x.Touch {
		args = append(args, "t", t.K, t.S, t.Z, t.M)
	}
	for _, e := range x.Events {
		args = append(args, "e", e.Type, e.Task, e.Payload, e.Meta, e.TS)
	}
	for _, id := range x.Outbox {
		args = append(args, "o", id)
	}
	if x.Ready {
		args = append(args, "r")
	}
	args[head] = len(args) - head - 2
	return args
}

// errRaced reports that a transition lost a race: what it read changed
// before it committed. The operation reads again and retries.
var errRaced = errors.New("state changed concurrently")

// maxRetries bounds how often an operation retries after losing races.
const maxRetries = 200

// check requires hash key to still have version ver (0: not to exist).
func (x *txn) check(key string, ver int64) {
	v := ""
	if ver != 0 {
		v = strconv.FormatInt(ver, 10)
	}
	x.Checks = append(x.Checks, check{K: key, V: v})
}

// emit appends ev to the event log with the transition.
func (x *txn) emit(ev taskwire.Event) {
	x.Events = append(x.Events, eventArgs{Type: string(ev.Type), Task: ev.TaskID,
		Payload: string(ev.Payload), Meta: string(ev.Metadata), TS: strconv.FormatInt(ev.Timestamp, 10)})
}

// saveTask writes after, the new state of the task read as before (nil
// for a new task), moving it between the queue sets, at now. after's
// version becomes before's plus one.
func (x *txn) saveTask(before, after *taskState, now time.Time) {
	key := x.k.task(after.ID)
	if before != nil {
		x.check(key, before.ver)
		x.unplace(before)
		after.ver = before.ver + 1
	} else {
		x.check(key, 0)
		after.ver = 1
	}
	x.Put = append(x.Put, put{K: key, F: after.fields()})
	x.saved = append(x.saved, after)
	x.place(after, now)
	x.Outbox = append(x.Outbox, after.ID)
}

// deleteTask removes the task read as s from Redis.
//
// It also marks the task deleted until the persister, through the outbox,
// has written its tombstone to PostgreSQL: should the caller's own
// PostgreSQL commit fail after the script, PostgreSQL still holds the
// task unfinished, and the mark keeps the reconciler from restoring it.
func (x *txn) deleteTask(s *taskState) {
	key := x.k.task(s.ID)
	x.check(key, s.ver)
	x.unplace(s)
	x.Del = append(x.Del, key)
	x.Mark = append(x.Mark, mark{K: x.k.deletion(s.ID), MS: deletionMarkTTL.Milliseconds()})
	x.Outbox = append(x.Outbox, s.ID)
	x.deleted = append(x.deleted, s.ID)
}

// deletionMarkTTL bounds how long a deletion mark outlives a persister
// that never removes it (the outbox entry is applied within seconds, or
// when PostgreSQL is back).
const deletionMarkTTL = 7 * 24 * time.Hour

// unplace takes the task out of every set its state put it in.
func (x *txn) unplace(s *taskState) {
	x.Zrem = append(x.Zrem, zmember{K: x.k.delayed(), M: s.ID}, zmember{K: x.k.ready(s.Queue), M: s.ID},
		zmember{K: x.k.leases(), M: s.ID})
	if s.AssignedTo != "" {
		x.Zrem = append(x.Zrem, zmember{K: x.k.reserved(s.AssignedTo), M: s.ID})
		x.Srem = append(x.Srem, zmember{K: x.k.held(s.AssignedTo), M: s.ID})
	}
}

// place puts the task in the sets its state calls for at now: a pending
// task in the delayed set until RunAt, then in its worker's reserved set
// or its queue's ready set; an in_progress task in the leases set; an
// unfinished assigned task in its worker's held set.
func (x *txn) place(s *taskState, now time.Time) {
	switch s.Status {
	case taskwire.StatusPending:
		switch {
		case s.RunAt.After(now):
			x.Zadd = append(x.Zadd, zmember{K: x.k.delayed(), S: msString(s.RunAt), M: s.ID})
		case s.AssignedTo != "":
			x.Zadd = append(x.Zadd, zmember{K: x.k.reserved(s.AssignedTo), S: score(s.Task), M: s.ID})
			x.Ready = true
		default:
			x.Zadd = append(x.Zadd, zmember{K: x.k.ready(s.Queue), S: score(s.Task), M: s.ID})
			x.Ready = true
		}
	case taskwire.StatusInProgress:
		x.Zadd = append(x.Zadd, zmember{K: x.k.leases(), S: msString(s.LeaseExpiresAt), M: s.ID})
	}
	if s.AssignedTo != "" && !s.Status.Final() {
		x.Sadd = append(x.Sadd, zmember{K: x.k.held(s.AssignedTo), M: s.ID})
	}
}

// touchWorker records a sign of life of worker id ("" for none) at now,
// when it is registered and online.
func (x *txn) touchWorker(id string, now time.Time) {
	if id == "" {
		return
	}
	x.Touch = append(x.Touch, touch{K: x.k.worker(id), S: msString(now), Z: x.k.seen(), M: id})
}

// apply commits x, in one run of apply.lua with the transitions of
// concurrent callers; errRaced when a check failed.
func (s *Store) apply(ctx context.Context, x *txn) error {
	return s.applyGrouped(ctx, &applyReq{args: x.encode(nil), note: len(x.Events) > 0 || x.Ready, ready: x.Ready})
}

// retry runs op until it does not lose a race, at most maxRetries times.
// An operation that loses every time meets a task too contended to change
// now: that is a *store.UnavailableError (-32001, safe to retry), like a
// busy backend.
func retry(ctx context.Context, op func() error) error {
	for range maxRetries {
		err := op()
		if !errors.Is(err, errRaced) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return &store.UnavailableError{Backend: "redis", RetryAfter: retryAfter,
		Err: fmt.Errorf("gave up after %d races: %w", maxRetries, errRaced)}
}

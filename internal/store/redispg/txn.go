package redispg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// txn is one state transition decided in Go from state read from Redis,
// committed by apply.lua only if that state is unchanged (see the
// script's header for each member).
type txn struct {
	Checks []check     `json:"checks,omitempty"`
	Put    []put       `json:"put,omitempty"`
	Del    []string    `json:"del,omitempty"`
	Bump   []string    `json:"bump,omitempty"`
	Zadd   []zmember   `json:"zadd,omitempty"`
	Zrem   []zmember   `json:"zrem,omitempty"`
	Sadd   []zmember   `json:"sadd,omitempty"`
	Srem   []zmember   `json:"srem,omitempty"`
	Events []eventArgs `json:"events,omitempty"`
	Outbox []string    `json:"outbox,omitempty"`
	Touch  []touch     `json:"touch,omitempty"`
	Ready  bool        `json:"ready,omitempty"`

	k keys
	// saved and deleted are the tasks the transition writes and removes,
	// for PostgreSQL.
	saved   []*taskState
	deleted []string
}

type check struct {
	K string `json:"k"`
	V string `json:"v"`
}

type put struct {
	K string   `json:"k"`
	F []string `json:"f"` // name, value pairs
}

// pairsOf flattens the fields m into name, value pairs.
func pairsOf(m map[string]string) []string {
	f := make([]string, 0, 2*len(m))
	for k, v := range m {
		f = append(f, k, v)
	}
	return f
}

type zmember struct {
	K string `json:"k"`
	S string `json:"s,omitempty"`
	M string `json:"m"`
}

type touch struct {
	K string `json:"k"`
	S string `json:"s"`
	Z string `json:"z"`
	M string `json:"m"`
}

type eventArgs struct {
	Type    string `json:"type"`
	Task    string `json:"task"`
	Payload string `json:"payload"`
	Meta    string `json:"meta"`
	TS      string `json:"ts"`
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
func (x *txn) deleteTask(s *taskState) {
	key := x.k.task(s.ID)
	x.check(key, s.ver)
	x.unplace(s)
	x.Del = append(x.Del, key)
	x.deleted = append(x.deleted, s.ID)
}

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
	doc, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("encode transition: %w", err)
	}
	return s.applyGrouped(ctx, &applyReq{doc: doc, note: len(x.Events) > 0 || x.Ready, ready: x.Ready})
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

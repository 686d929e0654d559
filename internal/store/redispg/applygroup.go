package redispg

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// gatherer hands the requests of concurrent callers to runners in groups,
// the way groupCommit shares PostgreSQL commits: a runner takes every
// request waiting, up to max, and serves them at once (one script run, one
// pipeline), so that callers share a round trip instead of paying one
// each. Several runners run, so that a group forms while the previous one
// is served.
type gatherer[R any] struct {
	reqs chan R
	max  int
	// stopped is done once the runners stop (the store closed).
	stopped context.Context
}

func newGatherer[R any](max int) *gatherer[R] {
	return &gatherer[R]{reqs: make(chan R), max: max, stopped: context.Background()}
}

// run starts n runners serving groups with serve until ctx ends.
func (g *gatherer[R]) run(ctx context.Context, n int, goLoop func(func()), serve func(context.Context, []R)) {
	g.stopped = ctx
	for range n {
		goLoop(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-g.reqs:
					serve(ctx, g.gather(r))
				}
			}
		})
	}
}

// gather returns first and the requests waiting behind it.
func (g *gatherer[R]) gather(first R) []R {
	group := []R{first}
	for len(group) < g.max {
		select {
		case r := <-g.reqs:
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

// send hands r to a runner; errClosed once the store closed.
func (g *gatherer[R]) send(ctx context.Context, r R) error {
	select {
	case g.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopped.Done():
		return errClosed
	}
}

// call hands r to a runner and returns the error the runner sends on
// done; ctx's error when ctx ends first (the outcome then unknown).
func (g *gatherer[R]) call(ctx context.Context, r R, done chan error) error {
	if err := g.send(ctx, r); err != nil {
		return err
	}
	err, cerr := await(ctx, done)
	if cerr != nil {
		return cerr
	}
	return err
}

// await returns the outcome sent on done, or ctx's error when ctx ends
// first (the outcome then unknown: the group is served on its own).
func await[T any](ctx context.Context, done chan T) (T, error) {
	select {
	case v := <-done:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// applyReq is one caller's transition, encoded, and the channel of its
// outcome.
type applyReq struct {
	args  []any // see txn.encode
	note  bool  // it appends events or makes a task ready
	ready bool
	done  chan error
}

// readReq is one caller's read of a hash and the channel of its outcome.
type readReq struct {
	key  string
	done chan readRes
}

type readRes struct {
	h   map[string]string
	err error
}

// Bounds of gathering: runners of each kind, and requests one group
// takes.
const (
	appliers      = 4
	maxGroupApply = 64
	readers       = 2
	maxGroupRead  = 128
)

// errNoEventSeq answers a transition with events while Redis lacks the
// event counter (see apply.lua); it is unavailable, safe to retry.
var errNoEventSeq = errors.New("NOEVSEQ the event counter is missing until it is set again from PostgreSQL")

// runGatherers starts the appliers and readers, until ctx ends.
func (s *Store) runGatherers(ctx context.Context) {
	s.applier.run(ctx, appliers, s.goLoop, s.applyRun)
	s.reader.run(ctx, readers, s.goLoop, s.readRun)
}

// applyRun commits group in one run of apply.lua (the transitions of
// concurrent callers, each committed or refused on its own) and answers
// each caller.
func (s *Store) applyRun(ctx context.Context, group []*applyReq) {
	n := 2
	for _, r := range group {
		n += len(r.args)
	}
	args := make([]any, 0, n)
	args = append(args, s.k.channel(), len(group))
	for _, r := range group {
		args = append(args, r.args...)
	}
	res, err := s.scripts.apply.Run(ctx, s.rdb, []string{s.k.eventSeq(), s.k.events(), s.k.outbox()},
		args...).Slice()
	if err == nil && len(res) != len(group)+1 {
		err = fmt.Errorf("apply: unexpected reply of %d values for %d transitions", len(res), len(group))
	}
	if err != nil {
		err = s.redisErr(err)
		for _, r := range group {
			r.done <- err
		}
		return
	}
	seq, _ := res[0].(int64)
	outcomes := make([]error, len(group))
	note, ready := false, false
	for i, r := range group {
		switch code, _ := res[i+1].(int64); code {
		case 1:
			note, ready = note || r.note, ready || r.ready
		case -1:
			outcomes[i] = s.redisErr(errNoEventSeq)
		default:
			outcomes[i] = errRaced
		}
	}
	if note {
		s.noted(seq, ready)
	}
	for i, r := range group {
		r.done <- outcomes[i]
	}
}

// applyGrouped commits the encoded transition of r with other callers'.
// It returns when ctx ends too, the outcome then unknown.
func (s *Store) applyGrouped(ctx context.Context, r *applyReq) error {
	r.done = make(chan error, 1)
	return waitingOnRedis(s.applier.call(ctx, r, r.done))
}

// waitingOnRedis marks err, when a context ended a wait for a runner of
// Redis commands, as a wait on Redis (see waitedOn); other errors pass.
func waitingOnRedis(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return redisWait{err}
	}
	return err
}

// readRun reads the hashes of group in one pipeline and answers each
// caller.
func (s *Store) readRun(ctx context.Context, group []*readReq) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(group))
	for i, r := range group {
		cmds[i] = pipe.HGetAll(ctx, r.key)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, r := range group {
		h, err := cmds[i].Result()
		r.done <- readRes{h: h, err: s.redisErr(err)}
	}
}

// readHash reads hash key (empty when it does not exist) in one pipeline
// with other callers' reads.
func (s *Store) readHash(ctx context.Context, key string) (map[string]string, error) {
	r := &readReq{key: key, done: make(chan readRes, 1)}
	if err := s.reader.send(ctx, r); err != nil {
		return nil, waitingOnRedis(err)
	}
	res, err := await(ctx, r.done)
	if err != nil {
		return nil, waitingOnRedis(err)
	}
	return res.h, res.err
}

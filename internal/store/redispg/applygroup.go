package redispg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// applyGroup runs the transitions of concurrent callers in shared runs of
// apply.lua, the way groupCommit shares PostgreSQL commits: an applier
// takes every transition waiting, up to maxGroupApply, and commits them in
// one script run, so that callers share one round trip and one script call
// instead of paying one each. Each transition still commits or fails on
// its own (its checks are its own), in the order gathered. Several
// appliers run, so that a group forms while the previous one runs.
type applyGroup struct {
	reqs chan *applyReq
	// stopped is done once the appliers stop (the store closed).
	stopped context.Context
}

// applyReq is one caller's transition, encoded, and the channel of its
// outcome.
type applyReq struct {
	doc   []byte
	note  bool // it appends events or makes a task ready
	ready bool
	done  chan error
}

// Bounds of group apply: appliers running at once, and transitions one
// run takes.
const (
	appliers      = 4
	maxGroupApply = 64
)

// errNoEventSeq answers a transition with events while Redis lacks the
// event counter (see apply.lua); it is unavailable, safe to retry.
var errNoEventSeq = errors.New("NOEVSEQ the event counter is missing until it is set again from PostgreSQL")

func newApplyGroup() *applyGroup {
	return &applyGroup{reqs: make(chan *applyReq), stopped: context.Background()}
}

// runAppliers runs the appliers until ctx ends.
func (s *Store) runAppliers(ctx context.Context) {
	g := s.applier
	g.stopped = ctx
	for range appliers {
		s.goLoop(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-g.reqs:
					s.applyRun(ctx, g.gather(r))
				}
			}
		})
	}
}

// gather returns first and the transitions waiting behind it.
func (g *applyGroup) gather(first *applyReq) []*applyReq {
	group := []*applyReq{first}
	for len(group) < maxGroupApply {
		select {
		case r := <-g.reqs:
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

// applyRun commits group in one run of apply.lua and answers each caller.
func (s *Store) applyRun(ctx context.Context, group []*applyReq) {
	n := 2
	for _, r := range group {
		n += len(r.doc) + 1
	}
	var buf bytes.Buffer
	buf.Grow(n)
	buf.WriteByte('[')
	for i, r := range group {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(r.doc)
	}
	buf.WriteByte(']')
	res, err := s.scripts.apply.Run(ctx, s.rdb, []string{s.k.eventSeq(), s.k.events(), s.k.outbox()},
		buf.Bytes(), s.k.channel()).Slice()
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

// applyGrouped commits the encoded transition doc with other callers'. It
// returns when ctx ends too, the outcome then unknown (the run commits or
// fails on its own).
func (s *Store) applyGrouped(ctx context.Context, r *applyReq) error {
	g := s.applier
	r.done = make(chan error, 1)
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stopped.Done():
		return errClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

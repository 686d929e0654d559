package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/taskwire/taskwire"
)

// Why a subscription ended, as its Err reports.
var (
	// ErrSlowConsumer: the subscriber fell more than Options.Buffer events
	// behind and was dropped. It may subscribe again, resuming after the
	// last event it received.
	ErrSlowConsumer = errors.New("slow consumer")
	// ErrUnsubscribed: the subscriber called Close.
	ErrUnsubscribed = errors.New("unsubscribed")
)

// Filter selects events. The zero Filter selects every event.
type Filter struct {
	// Types, when not empty, selects only events of these types.
	Types []taskwire.EventType
	// TaskID, when not empty, selects only events about this task (worker
	// events have none).
	TaskID string
}

// UnknownTypeError reports an event type the contract does not define.
type UnknownTypeError struct{ Type string }

func (e *UnknownTypeError) Error() string { return "unknown event type: " + e.Type }

// Validate returns an *UnknownTypeError for the first type in f.Types that
// is not one of taskwire.EventTypes.
func (f Filter) Validate() error {
	for _, t := range f.Types {
		if !slices.Contains(taskwire.EventTypes, t) {
			return &UnknownTypeError{Type: string(t)}
		}
	}
	return nil
}

// match reports whether f selects e. It selects every events.gap event:
// the events missing may have been any.
func (f Filter) match(e *taskwire.Event) bool {
	if e.Type == taskwire.EventGap {
		return true
	}
	if f.TaskID != "" && e.TaskID != f.TaskID {
		return false
	}
	return len(f.Types) == 0 || slices.Contains(f.Types, e.Type)
}

// Subscription receives the events of a hub that match its filter, oldest
// first, each once. Its channel is closed when it ends; Err then says why.
type Subscription struct {
	hub    *Hub
	filter Filter
	// start is the position the subscription's events follow (Start).
	start string
	c     chan taskwire.Event
	// ctx ends with the subscription; it bounds the replay's reads.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// replaying: the replay goroutine owns c (sends to it, closes it);
	// live events wait in pending. Otherwise deliver owns c.
	replaying bool
	pending   []taskwire.Event
	// skip: live events with an ID up to it are left out; it is the
	// resume point during the replay, the last ID replayed after it.
	skip  string
	ended bool
	err   error
}

// Subscribe returns a subscription to the events that match f. It waits
// until the hub has started (Run has reached the end of the log).
//
// With after == "" the subscription receives the events the hub reads
// from now on (which may include a few committed just before the call,
// that the hub had not read yet). With after set to an event ID it first receives the events
// the log still holds after that ID, then continues with live events,
// with no gap and no duplicate between the two; an after the log never
// issued is an error from the log. The subscription ends when ctx ends
// (Err is ctx's error), when Close is called, when the hub stops, or when
// the subscriber falls more than Options.Buffer events behind.
func (h *Hub) Subscribe(ctx context.Context, f Filter, after string) (*Subscription, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	select {
	case <-h.ready:
	case <-h.done:
		return nil, ErrHubClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	skip, err := h.liveStart(ctx, after)
	if err != nil {
		return nil, err
	}
	f.Types = slices.Clone(f.Types)
	s := &Subscription{hub: h, filter: f, c: make(chan taskwire.Event, h.opts.Buffer), skip: skip}
	s.ctx, s.cancel = context.WithCancel(ctx)

	// Register for live events first: from here on every event after
	// liveAfter is held for s, while the replay below reads the log up to
	// liveAfter (or beyond). Live events the replay already gave are
	// dropped by ID, so the two meet with no gap and no duplicate.
	s.replaying = after != ""
	liveAfter, err := h.add(s)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.start = startOf(after, skip, liveAfter)
	if s.replaying {
		var first []taskwire.Event
		if after != liveAfter {
			first, err = h.log.ReadEvents(s.ctx, after, h.opts.ReadLimit)
			if err != nil {
				h.remove(s)
				s.cancel()
				return nil, fmt.Errorf("replay: %w", err)
			}
		}
		go s.replay(after, liveAfter, first)
	}
	context.AfterFunc(s.ctx, func() { s.end(context.Cause(ctx)) })
	return s, nil
}

// Start returns the position of the log the subscription starts after:
// its events are the events of the log after that ID that match its
// filter, each once, none missing. It is the resume point given to
// Subscribe, else the newest event the log held for the subscription when
// it registered, or "0" (before the first event, a resume point every
// log accepts) when there was none. A subscriber that has received no
// event yet resumes from Start without gap or duplicate, the same as one
// that resumes after the last event it received.
func (s *Subscription) Start() string { return s.start }

// startOf returns the position of a subscription that resumes after after
// (or, when after is empty, skips live events up to skip and receives the
// hub's events after liveAfter).
func startOf(after, skip, liveAfter string) string {
	switch {
	case after != "":
		return after
	case compareIDs(skip, liveAfter) > 0:
		return skip
	case liveAfter != "":
		return liveAfter
	}
	return "0"
}

// Events returns the channel the subscription's events arrive on. It is
// closed when the subscription ends.
func (s *Subscription) Events() <-chan taskwire.Event { return s.c }

// Done returns a channel that is closed as soon as the subscription ends,
// possibly before the events still in its channel have been read.
func (s *Subscription) Done() <-chan struct{} { return s.ctx.Done() }

// Err returns why the subscription ended: ErrSlowConsumer, ErrHubClosed,
// ErrUnsubscribed, the error of a failed replay, or the error of the ctx
// given to Subscribe. It is nil while the subscription is live, and not
// nil once Done is closed.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && s.ctx.Err() != nil {
		// The ctx given to Subscribe ended and its AfterFunc has not
		// run yet: end the subscription now, as it would.
		s.endLocked(context.Cause(s.ctx))
	}
	return s.err
}

// Close ends the subscription (Err: ErrUnsubscribed) and closes its
// channel. It is safe to call more than once.
func (s *Subscription) Close() { s.end(ErrUnsubscribed) }

// end ends the subscription with err unless it has ended already.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(err)
}

func (s *Subscription) endLocked(err error) {
	if s.ended {
		return
	}
	s.ended, s.err, s.pending = true, err, nil
	if !s.replaying {
		close(s.c)
	}
	s.cancel() // stops a replay, which then closes c
	s.hub.remove(s)
}

// deliver hands s the live events of evs that match its filter, without
// ever blocking: a subscriber with no room left is dropped.
func (s *Subscription) deliver(evs []taskwire.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range evs {
		if s.ended {
			return
		}
		e := &evs[i]
		if !s.filter.match(e) || compareIDs(e.ID, s.skip) <= 0 {
			continue
		}
		if s.replaying {
			if len(s.pending) >= cap(s.c) {
				s.endLocked(ErrSlowConsumer)
				return
			}
			s.pending = append(s.pending, *e)
			continue
		}
		select {
		case s.c <- s.fitted(*e):
		default:
			s.endLocked(ErrSlowConsumer)
		}
	}
}

// fitted returns e, or, for an events.gap event, the gap as s sees it:
// from the events s had already (up to skip) on.
func (s *Subscription) fitted(e taskwire.Event) taskwire.Event {
	if e.Type == taskwire.EventGap {
		return clipGap(e, s.skip)
	}
	return e
}

// liveStart returns the ID after which a subscription resuming after
// after begins: after itself, or, without one, the newest event the log
// holds when the log tells it (Tail), so that a live-only subscription
// never gets an event committed before it while the hub's cursor lags.
func (h *Hub) liveStart(ctx context.Context, after string) (string, error) {
	tail, ok := h.log.(Tail)
	if after != "" || !ok {
		return after, nil
	}
	return tail.LastEventID(ctx)
}

// replay gives the subscriber the events of the log after after, starting
// with first, until it has passed liveAfter, where live delivery begins;
// then it hands the channel over to live delivery. The subscriber takes
// the replay at its own pace; only live events that pile up meanwhile
// count against its buffer. Where events are no longer in the log (the
// log was trimmed past after, or while the replay ran), an events.gap
// event takes their place.
func (s *Subscription) replay(after, liveAfter string, page []taskwire.Event) {
	last := after
	var err error
	for len(page) > 0 {
		for _, e := range withGaps(s.ctx, s.hub.log, last, page) {
			last = e.ID
			if !s.filter.match(&e) {
				continue
			}
			select {
			case s.c <- e:
			case <-s.ctx.Done():
				s.finishReplay(last, nil)
				return
			}
		}
		if compareIDs(last, liveAfter) >= 0 {
			break
		}
		page, err = s.hub.log.ReadEvents(s.ctx, last, s.hub.opts.ReadLimit)
		if err != nil {
			err = fmt.Errorf("replay: %w", err)
			break
		}
	}
	if err == nil && compareIDs(last, liveAfter) < 0 && issuedBetween(s.ctx, s.hub.log, last, successor(liveAfter)) {
		// The log no longer holds the events up to liveAfter, which
		// live delivery starts after.
		select {
		case s.c <- gapEvent(last, successor(liveAfter)):
			last = liveAfter
		case <-s.ctx.Done():
		}
	}
	s.finishReplay(last, err)
}

// finishReplay hands c from the replay to live delivery: the live events
// held meanwhile that come after last go first.
func (s *Subscription) finishReplay(last string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.endLocked(err)
	}
	s.replaying = false
	if s.ended {
		close(s.c)
		return
	}
	if compareIDs(last, s.skip) > 0 {
		s.skip = last
	}
	pending := s.pending
	s.pending = nil
	for _, e := range pending {
		if compareIDs(e.ID, s.skip) <= 0 {
			continue
		}
		select {
		case s.c <- s.fitted(e):
		default:
			s.endLocked(ErrSlowConsumer)
			return
		}
	}
}

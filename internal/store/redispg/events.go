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

// ReadEvents returns up to limit events after the event with ID after
// ("" for the oldest), oldest first. An event's ID is the decimal form of
// its sequence number, the stream entry "seq-0"; an after that is not one,
// or is beyond the last number issued, is an error.
func (s *Store) ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error) {
	return boundedValue(ctx, s, func(ctx context.Context) ([]taskwire.Event, error) { return s.readEvents(ctx, after, limit) })
}

func (s *Store) readEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("read events: limit %d, want at least 1", limit)
	}
	start := "-"
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != after {
			return nil, fmt.Errorf("read events after %q: not an event id: %w", after, store.ErrNotFound)
		}
		issued, err := s.rdb.Get(ctx, s.k.eventSeq()).Int64()
		if err != nil && err != redis.Nil {
			return nil, fmt.Errorf("read events: %w", s.redisErr(err))
		}
		if n > issued {
			return nil, fmt.Errorf("event id %s was never issued: %w", after, store.ErrNotFound)
		}
		start = "(" + after + "-0"
	}
	msgs, err := s.rdb.XRangeN(ctx, s.k.events(), start, "+", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("read events after %q: %w", after, s.redisErr(err))
	}
	out := make([]taskwire.Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, eventFromEntry(m))
	}
	return out, nil
}

// TaskEvents returns the oldest limit events of task taskID, oldest
// first. The log is one stream with no index by task, so it reads the
// stream from its oldest entry in pages of taskEventsPage entries and
// keeps the task's: the cost is O(N) in the events the log holds
// (N <= MaxEvents, 1,000,000 by default), less when limit events of the
// task are found early. Keeping an index per task in the scripts would
// make every append, trim and deletion pay for this rare read.
func (s *Store) TaskEvents(ctx context.Context, taskID string, limit int) ([]taskwire.Event, error) {
	if limit < 1 {
		return nil, fmt.Errorf("task events: limit %d, want at least 1", limit)
	}
	out := []taskwire.Event{}
	if taskID == "" { // worker events have no task
		return out, nil
	}
	for start := "-"; len(out) < limit; {
		msgs, err := boundedValue(ctx, s, func(ctx context.Context) ([]redis.XMessage, error) { // a bound per page
			return s.rdb.XRangeN(ctx, s.k.events(), start, "+", taskEventsPage).Result()
		})
		if err != nil {
			return nil, fmt.Errorf("task events of %s: %w", taskID, s.redisErr(err))
		}
		for _, m := range msgs {
			if v, _ := m.Values["task"].(string); v == taskID && len(out) < limit {
				out = append(out, eventFromEntry(m))
			}
		}
		if len(msgs) < taskEventsPage {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return out, nil
}

// taskEventsPage is how many stream entries TaskEvents reads per call.
const taskEventsPage = 1000

func eventFromEntry(m redis.XMessage) taskwire.Event {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	id := m.ID
	if i := len(id) - 2; i > 0 && id[i:] == "-0" {
		id = id[:i]
	}
	ts, _ := strconv.ParseInt(str("ts"), 10, 64)
	return taskwire.Event{ID: id, Type: taskwire.EventType(str("type")), TaskID: str("task"),
		Payload: []byte(str("payload")), Metadata: []byte(str("meta")), Timestamp: ts}
}

// EventsChanged returns a channel closed once events have been appended
// after the call, by this process or any other sharing the Redis: the
// scripts that append events publish on the notification channel.
func (s *Store) EventsChanged() <-chan struct{} { return s.events.Wait() }

// TasksReady returns a channel closed once a task may have become
// claimable after the call, in any process (store.ReadyNotifier).
func (s *Store) TasksReady() <-chan struct{} { return s.ready.Wait() }

// listen turns the notification channel's messages into the events and
// ready signals until ctx ends. A lost subscription is reestablished by
// the client; both signals fire after it, since messages may have been
// missed meanwhile.
func (s *Store) listen(ctx context.Context, sub *redis.PubSub) {
	for {
		msg, err := sub.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			kind, n, _ := strings.Cut(m.Payload, ":")
			seq, _ := strconv.ParseInt(n, 10, 64)
			s.noted(seq, kind == "r")
		case *redis.Subscription:
			s.events.Fire()
			s.ready.Fire()
		}
		if err != nil {
			pause(ctx, 100*time.Millisecond)
		}
	}
}

// noted records that events up to seq were appended, and that a task may
// have become ready. The events signal fires for events this process has
// not signalled yet: a script's own message reaches the listener before
// or after the call that ran the script notes its reply, and the later of
// the two finds them signalled. A seq far below the last one means the
// counter started over (Redis lost its data): it fires then too. It fires
// under seqMu, so that no caller returns before the signal fired for seq:
// else the call that ran a script could return while the listener's fire
// for its events was still to come, a fire that would wake a waiter that
// came after them.
func (s *Store) noted(seq int64, ready bool) {
	s.seqMu.Lock()
	if seq > s.lastSeq || seq < s.lastSeq-seqWindow {
		s.lastSeq = seq
		if s.firing != nil {
			s.firing()
		}
		s.events.Fire()
	}
	s.seqMu.Unlock()
	if ready {
		s.ready.Fire()
	}
}

// seqWindow is how far below the last event id a notified id may be and
// still be a late echo rather than a restarted counter.
const seqWindow = 1 << 20

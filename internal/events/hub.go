// Package events fans taskwire's durable event log out to live
// subscribers: one Hub per process tails the store's log, and any number
// of subscriptions (Server-Sent Events on GET /events, WebSocket
// events.subscribe, the dashboard) receive from it without querying the
// store themselves, except to replay what they missed.
package events

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/taskwire/taskwire"
)

// Log is the durable event log a Hub tails: the reading half of
// store.Lifecycle, which every store implements.
type Log interface {
	// ReadEvents returns up to limit events with an ID after after ("" for
	// the oldest the log holds), oldest first. IDs are consecutive
	// integers in decimal but for runs skipped on purpose; a jump means
	// that events are missing, unless Skips says none was issued.
	ReadEvents(ctx context.Context, after string, limit int) ([]taskwire.Event, error)
	// EventsChanged returns a channel closed once events have been
	// committed after the call.
	EventsChanged() <-chan struct{}
}

// Tail is what a Log may offer besides: the ID of the newest event
// committed ("" when none ever was). A hub over a Log with a Tail moves
// its cursor to the end of the log without reading the events between
// while no subscription would receive them.
type Tail interface {
	LastEventID(ctx context.Context) (string, error)
}

// Options tune a Hub; the zero value takes the defaults.
type Options struct {
	// Buffer is how many events a subscriber may fall behind the log
	// before it is dropped with ErrSlowConsumer (default 1024).
	Buffer int
	// ReadLimit is the most events read from the log per query
	// (default 1000).
	ReadLimit int
	// RetryDelay is how long the hub waits after a failed read before it
	// tries again (default 1s). Subscribers stay connected meanwhile.
	RetryDelay time.Duration
	// Logger receives failed reads (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Buffer <= 0 {
		o.Buffer = 1024
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = 1000
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// ErrHubClosed ends the subscriptions of a hub that stopped (the server is
// shutting down), and is what Subscribe returns afterwards.
var ErrHubClosed = errors.New("event hub closed")

// Hub reads a Log with one goroutine (Run) and delivers every event to the
// subscriptions whose filter it matches, in log order. A slow subscriber
// never delays the hub or the others: it is dropped instead.
type Hub struct {
	log  Log
	opts Options

	// ready is closed once Run has read up to the end of the log as it was
	// at start: from then on, last is where live delivery begins.
	ready chan struct{}
	// done is closed when the hub stops; every subscription has ended.
	done chan struct{}

	mu      sync.Mutex
	last    string          // ID of the newest event delivered ("" none)
	subs    []*Subscription // copied on write: broadcast reads it unlocked
	closed  bool
	running bool
	cancel  context.CancelFunc // stops Run
	stopped chan struct{}      // closed when Run returns
}

// NewHub returns a hub over log. It delivers nothing until Run is called.
func NewHub(log Log, opts Options) *Hub {
	return &Hub{
		log:     log,
		opts:    opts.withDefaults(),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// Run tails the log until ctx ends or Close is called, then ends every
// subscription with ErrHubClosed. It first skips to the end of the log, so
// a subscription without a resume point sees only events committed after
// it. A failed read is logged and retried after Options.RetryDelay. Run
// must be called once.
func (h *Hub) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.mu.Lock()
	if h.closed || h.running {
		h.mu.Unlock()
		return
	}
	h.running, h.cancel = true, cancel
	h.mu.Unlock()
	defer close(h.stopped)
	defer h.shutdown()

	for {
		changed := h.log.EventsChanged()
		if err := h.readAll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			h.opts.Logger.Warn("events: read log", "after", h.cursor(), "err", err)
			select {
			case <-time.After(h.opts.RetryDelay):
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-h.ready:
		default:
			close(h.ready)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// readAll reads and broadcasts the log from the hub's cursor to its end.
func (h *Hub) readAll(ctx context.Context) error {
	if skipped, err := h.skipUnwatched(ctx); skipped || err != nil {
		return err
	}
	for {
		evs, err := h.log.ReadEvents(ctx, h.cursor(), h.opts.ReadLimit)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		h.broadcast(ctx, evs)
		if len(evs) < h.opts.ReadLimit {
			return nil
		}
	}
}

// skipUnwatched moves the cursor to the end of the log, without reading
// the events, when no subscription is registered and the log has a Tail.
// It reports whether it did; when a subscription registers meanwhile, the
// events are read and delivered as usual.
func (h *Hub) skipUnwatched(ctx context.Context) (bool, error) {
	tail, ok := h.log.(Tail)
	if !ok || h.Subscribers() > 0 {
		return false, nil
	}
	id, err := tail.LastEventID(ctx)
	if err != nil {
		return false, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) > 0 {
		return false, nil
	}
	if compareIDs(id, h.last) > 0 {
		h.last = id
	}
	return true, nil
}

// cursor returns the ID of the newest event delivered.
func (h *Hub) cursor() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// broadcast advances the cursor past evs and offers them to every
// subscription registered before the cursor moved. A subscription
// registered after it begins with the event after evs (see Subscribe).
// Where the log no longer holds events the hub had not read yet, an
// events.gap event takes their place. Only Run's goroutine moves the
// cursor, so the gaps are found without holding the lock (it may take a
// read of the log).
func (h *Hub) broadcast(ctx context.Context, evs []taskwire.Event) {
	if last := h.cursor(); last != "" {
		evs = withGaps(ctx, h.log, last, evs)
	}
	h.mu.Lock()
	h.last = evs[len(evs)-1].ID
	subs := h.subs
	h.mu.Unlock()
	for _, s := range subs {
		s.deliver(evs)
	}
}

// Close ends every subscription with ErrHubClosed, makes later Subscribe
// calls fail with it, stops Run and waits for it to return. It is safe to
// call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	running, cancel := h.running, h.cancel
	h.mu.Unlock()
	h.shutdown()
	if running {
		cancel()
		<-h.stopped
	}
}

// shutdown marks the hub closed and ends its subscriptions.
func (h *Hub) shutdown() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	subs := h.subs
	h.subs = nil
	close(h.done)
	h.mu.Unlock()
	for _, s := range subs {
		s.end(ErrHubClosed)
	}
}

// add registers s for live delivery and returns the ID of the newest event
// already delivered: s receives every later one.
func (h *Hub) add(s *Subscription) (liveAfter string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return "", ErrHubClosed
	}
	subs := make([]*Subscription, len(h.subs), len(h.subs)+1)
	copy(subs, h.subs)
	h.subs = append(subs, s)
	return h.last, nil
}

// remove unregisters s.
func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.subs {
		if x == s {
			subs := make([]*Subscription, 0, len(h.subs)-1)
			subs = append(subs, h.subs[:i]...)
			h.subs = append(subs, h.subs[i+1:]...)
			return
		}
	}
}

// Subscribers returns how many subscriptions are live.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// compareIDs orders two event IDs as the log does: negative when a comes
// before b, zero when equal, positive after. "" (before the first event)
// comes before every ID.
//
// It assumes the SQLite backend's IDs: the decimal form, without leading
// zeros, of integers that increase with every append. A shorter ID is
// therefore the smaller one, and IDs of one length compare as strings. A
// backend with IDs of another shape needs its own ordering here.
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

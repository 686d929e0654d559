package ws

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/events"
	"github.com/taskwire/taskwire/internal/store"
)

// session is what a call made over a WebSocket finds in its context: the
// connection, and the subscriptions the message opened, which start
// sending once the message's response is queued.
type session struct {
	c       *conn
	mu      sync.Mutex
	pending []*forwarder
	started bool
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// startSubscriptions lets the subscriptions opened by the message run.
func (s *session) startSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	for _, f := range s.pending {
		go f.run()
	}
	s.pending = nil
}

// start runs f once the message's response is queued.
func (s *session) start(f *forwarder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		go f.run()
		return
	}
	s.pending = append(s.pending, f)
}

// Subscribe returns the function of events.subscribe. allow, when not
// nil, is asked first whether the caller may subscribe (roles, rate
// limits). Called outside a WebSocket connection (POST /rpc) it fails
// with -32601, as the method cannot push events there.
func Subscribe(allow func(context.Context) error) func(context.Context, *taskwire.SubscribeParams) (*taskwire.SubscribeResult, error) {
	return func(ctx context.Context, p *taskwire.SubscribeParams) (*taskwire.SubscribeResult, error) {
		s := sessionFrom(ctx)
		if s == nil {
			return nil, webSocketOnly(taskwire.MethodEventsSubscribe)
		}
		if allow != nil {
			if err := allow(ctx); err != nil {
				return nil, err
			}
		}
		return s.c.subscribe(s, p)
	}
}

// Unsubscribe is events.unsubscribe: it ends a subscription of the
// caller's connection; no notification of it follows the response. Called
// outside a WebSocket connection it fails with -32601.
func Unsubscribe(ctx context.Context, p *taskwire.UnsubscribeParams) (*taskwire.UnsubscribeResult, error) {
	s := sessionFrom(ctx)
	if s == nil {
		return nil, webSocketOnly(taskwire.MethodEventsUnsubscribe)
	}
	if !s.c.unsubscribe(p.Subscription) {
		return nil, &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Subscription not found: " + p.Subscription,
			Data: map[string]any{"validation": "subscription: no subscription " + p.Subscription + " on this connection",
				"subscription": p.Subscription}}
	}
	return &taskwire.UnsubscribeResult{Unsubscribed: true}, nil
}

// webSocketOnly is the error of a WebSocket-only method called over HTTP:
// the exact -32601 of the contract, its data saying where the method is.
func webSocketOnly(method string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeMethodNotFound,
		Message: "Method not found: " + method,
		Data:    map[string]any{"method": method, "transport": "websocket", "hint": "WebSocket only: connect to GET /ws"}}
}

// subscribe opens a subscription of the connection.
func (c *conn) subscribe(s *session, p *taskwire.SubscribeParams) (*taskwire.SubscribeResult, error) {
	c.mu.Lock()
	if len(c.subs) >= c.h.opts.MaxSubscriptions {
		c.mu.Unlock()
		return nil, &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Too many subscriptions on this connection",
			Data:    map[string]any{"validation": "at most " + strconv.Itoa(c.h.opts.MaxSubscriptions) + " subscriptions per connection", "limit": c.h.opts.MaxSubscriptions}}
	}
	c.lastSub++
	id := "s" + strconv.Itoa(c.lastSub)
	f := &forwarder{c: c, id: id}
	c.subs[id] = f
	c.mu.Unlock()

	sub, err := c.h.hub.Subscribe(c.ctx, events.Filter{Types: p.Types, TaskID: p.TaskID}, p.AfterEventID)
	if err != nil {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
		return nil, subscribeError(p, err)
	}
	c.mu.Lock()
	f.sub = sub
	c.mu.Unlock()
	s.start(f)
	return &taskwire.SubscribeResult{Subscription: id, AfterEventID: sub.Start()}, nil
}

// subscribeError maps a failed hub subscription to its JSON-RPC error.
func subscribeError(p *taskwire.SubscribeParams, err error) error {
	var unknown *events.UnknownTypeError
	switch {
	case errors.As(err, &unknown):
		return taskwire.InvalidParams("types: unknown event type %q", unknown.Type)
	case errors.Is(err, store.ErrNotFound):
		return &taskwire.Error{Code: taskwire.CodeInvalidParams,
			Message: "Unknown event id: " + p.AfterEventID,
			Data: map[string]any{"validation": "afterEventId: unknown event id " + p.AfterEventID,
				"afterEventId": p.AfterEventID}}
	case errors.Is(err, events.ErrHubClosed):
		return &taskwire.Error{Code: taskwire.CodeUnavailable, Message: "Event stream unavailable: server shutting down",
			Data: map[string]any{"backend": "events", "retryAfterMs": 1000}}
	}
	return err
}

// unsubscribe ends the subscription id and reports whether it existed.
func (c *conn) unsubscribe(id string) bool {
	c.mu.Lock()
	f := c.subs[id]
	if f == nil || f.sub == nil {
		c.mu.Unlock()
		return false
	}
	delete(c.subs, id)
	c.mu.Unlock()
	f.stop()
	return true
}

// forwarder sends the events of one subscription as events.event
// notifications.
type forwarder struct {
	c   *conn
	id  string
	sub *events.Subscription

	mu      sync.Mutex // held while an event is queued, so stop waits for it
	stopped bool
}

// run forwards events until the subscription ends, and closes the
// connection when it ended because the client fell too far behind or the
// server is shutting down. Events still buffered when the subscription
// ends are dropped: a slow consumer is cut off at once.
func (f *forwarder) run() {
	for {
		select {
		case <-f.sub.Done():
			f.end()
			return
		case e, ok := <-f.sub.Events():
			if !ok {
				f.end()
				return
			}
			if !f.forward(&e) {
				f.sub.Close()
				return
			}
		}
	}
}

// end forgets the ended subscription and acts on why it ended.
func (f *forwarder) end() {
	f.c.mu.Lock()
	if f.c.subs[f.id] == f {
		delete(f.c.subs, f.id)
	}
	f.c.mu.Unlock()
	switch err := f.sub.Err(); {
	case errors.Is(err, events.ErrSlowConsumer):
		f.c.h.opts.Logger.Warn("ws: slow consumer disconnected", "subscription", f.id)
		f.c.shut(websocket.StatusPolicyViolation, "slow consumer: too many events behind; reconnect and resubscribe with afterEventId")
	case errors.Is(err, events.ErrHubClosed):
		f.c.shut(websocket.StatusGoingAway, "server shutting down")
	case errors.Is(err, events.ErrUnsubscribed), errors.Is(err, context.Canceled):
	default:
		f.c.h.opts.Logger.Error("ws: subscription failed", "subscription", f.id, "err", err)
		f.c.shut(websocket.StatusInternalError, "event stream failed")
	}
}

// forward queues the notification of e unless the subscription was
// stopped; it returns false once the connection is closing.
func (f *forwarder) forward(e *taskwire.Event) bool {
	b, err := taskwire.MarshalJSON(struct {
		JSONRPC string                     `json:"jsonrpc"`
		Method  string                     `json:"method"`
		Params  taskwire.EventNotification `json:"params"`
	}{"2.0", taskwire.MethodEventsEvent, taskwire.EventNotification{Subscription: f.id, Event: *e}})
	if err != nil {
		f.c.h.opts.Logger.Error("ws: encode event", "event", e.ID, "err", err)
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return true
	}
	return f.c.send(b)
}

// stop ends the subscription: once stop returns, no more of its events
// are queued.
func (f *forwarder) stop() {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.sub.Close()
}

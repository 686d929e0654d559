package ws

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// conn is one WebSocket connection: a read loop that starts a goroutine
// per message (bounded by sem), one writer that owns the socket's writes,
// a pinger, and the connection's subscriptions.
type conn struct {
	h  *Handler
	ws *websocket.Conn
	// ctx is what calls run in: the client address, the caller's
	// identity once authenticated; cancel ends it when the connection
	// closes, which stops long polls and subscriptions.
	ctx           context.Context
	cancel        context.CancelFunc
	authenticated bool

	out      chan []byte   // messages for the writer
	sem      chan struct{} // one token per running request
	closing  chan struct{} // closed by shut
	shutOnce sync.Once
	inflight sync.WaitGroup

	mu      sync.Mutex
	subs    map[string]*forwarder
	lastSub int
}

func newConn(h *Handler, ws *websocket.Conn, ctx context.Context, cancel context.CancelFunc, authenticated bool) *conn {
	return &conn{
		h: h, ws: ws, ctx: ctx, cancel: cancel, authenticated: authenticated,
		out:     make(chan []byte, h.opts.SendQueue),
		sem:     make(chan struct{}, h.opts.MaxConcurrent),
		closing: make(chan struct{}),
		subs:    map[string]*forwarder{},
	}
}

// run serves the connection until it closes, then waits for its requests
// and goroutines to finish.
func (c *conn) run() {
	var bg sync.WaitGroup
	bg.Go(c.writeLoop)
	bg.Go(c.pingLoop)
	c.readLoop()
	c.shut(websocket.StatusNormalClosure, "")
	c.inflight.Wait()
	bg.Wait()
	_ = c.ws.CloseNow()
}

// readLoop reads messages until the connection fails or closes. The read
// context is not the connection's: cancelling that one would make the
// library drop the socket before a close frame could say why.
func (c *conn) readLoop() {
	first := true
	for {
		_, msg, err := c.ws.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.h.opts.Logger.Info("ws: message over the limit", "limit", c.h.opts.MaxMessageBytes)
			}
			return
		}
		if first {
			first = false
			if !c.authenticate(msg) {
				continue
			}
		}
		select {
		case c.sem <- struct{}{}:
		case <-c.closing:
			return
		}
		c.inflight.Go(func() {
			defer func() { <-c.sem }()
			c.answer(msg)
		})
	}
}

// answer runs one message and queues its response, then lets the
// subscriptions it opened start sending: their events follow the
// response that names them.
func (c *conn) answer(msg []byte) {
	s := &session{c: c}
	resp := c.h.rpc.Answer(context.WithValue(c.ctx, sessionKey{}, s), msg)
	if resp != nil {
		c.send(resp)
	}
	s.startSubscriptions()
}

// send queues b for the writer; it waits while the queue is full and
// returns false once the connection is closing.
func (c *conn) send(b []byte) bool {
	select {
	case <-c.closing:
		return false
	default:
	}
	select {
	case c.out <- b:
		return true
	case <-c.closing:
		return false
	}
}

// writeLoop writes the queued messages in order, each within
// WriteTimeout.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.closing:
			return
		case b := <-c.out:
			ctx, cancel := context.WithTimeout(context.Background(), c.h.opts.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					c.h.opts.Logger.Warn("ws: write timed out, dropping connection")
				}
				c.shut(websocket.StatusPolicyViolation, "write timed out")
				return
			}
		}
	}
}

// pingLoop pings every PingInterval; a peer that does not answer within
// the interval is disconnected.
func (c *conn) pingLoop() {
	every := c.h.opts.PingInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.closing:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.shut(websocket.StatusPolicyViolation, "ping timed out")
				return
			}
		}
	}
}

// shut closes the connection once, with code and reason: calls and
// subscriptions end, queued messages are dropped, and the close handshake
// runs in the background (bounded by the library's timeouts).
func (c *conn) shut(code websocket.StatusCode, reason string) {
	c.shutOnce.Do(func() {
		close(c.closing)
		c.cancel()
		go func() { _ = c.ws.Close(code, reason) }()
	})
}

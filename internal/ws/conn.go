package ws

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire/internal/rpc"
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

	out      chan outMsg   // messages for the writer
	sem      chan struct{} // one token per running request
	closing  chan struct{} // closed by shut
	shutOnce sync.Once
	// Set by shut before closing is closed: how the writer closes the
	// socket, and whether it first writes what is queued.
	closeCode   websocket.StatusCode
	closeReason string
	flush       bool
	inflight    sync.WaitGroup
	// readWaits counts the read loop's waits for a free slot, twice each
	// (on entering and on leaving): odd while it waits. Pongs are only
	// taken in while it reads.
	readWaits atomic.Uint64

	mu      sync.Mutex
	subs    map[string]*forwarder
	lastSub int
	// draining: the server is shutting down; no request is started.
	draining bool
}

func newConn(h *Handler, ws *websocket.Conn, ctx context.Context, cancel context.CancelFunc, authenticated bool) *conn {
	return &conn{
		h: h, ws: ws, ctx: ctx, cancel: cancel, authenticated: authenticated,
		out:     make(chan outMsg, h.opts.SendQueue),
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
	c.discard()
}

// outMsg is a message for the writer, in parts, and what its answer holds
// (see rpc.Hold), released once it is written or dropped; nil for none.
type outMsg struct {
	parts   [][]byte
	release func()
}

func (m outMsg) done() {
	if m.release != nil {
		m.release()
	}
}

// discard drops the messages the writer left queued, releasing what they
// hold; it runs once nothing sends any more.
func (c *conn) discard() {
	for {
		select {
		case m := <-c.out:
			m.done()
		default:
			return
		}
	}
}

// readLoop reads messages until the connection fails or closes. The read
// context is not the connection's: cancelling that one would make the
// library drop the socket before a close frame could say why.
func (c *conn) readLoop() {
	first := true
	inTime := c.authDeadline()
	for {
		typ, msg, release, err := c.read(first && !c.authenticated)
		if errors.Is(err, errAuthTooLarge) {
			c.requireToken(nil)
			return
		}
		if errors.Is(err, rpc.ErrBodyBudget) {
			if !c.send(rpc.BudgetRefusal()) {
				return
			}
			continue
		}
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.h.opts.Logger.Info("ws: message over the limit", "limit", c.h.opts.MaxMessageBytes)
			}
			return
		}
		if !c.take(typ, msg, &first, inTime, release) {
			return
		}
	}
}

// maxAuthMessage bounds the first message of a connection that still
// needs a token: rpc.authenticate {token} fits in it many times over, and
// a caller not yet known takes nothing from the memory budget.
const maxAuthMessage = 64 << 10

// errAuthTooLarge is a first message over maxAuthMessage on a connection
// that still needs a token.
var errAuthTooLarge = errors.New("first message too large for rpc.authenticate")

// read reads the next message whole, a large one under the server's
// budget of request bodies (rpc.Server.ReadMessage): release gives its
// share back. A message must arrive, once it has begun, within the time a
// request body of the largest message's size may take
// (rpc.Server.ArrivalTime), or the connection ends with 1008. The message
// that must authenticate the connection (needsToken) is read only up to
// maxAuthMessage.
func (c *conn) read(needsToken bool) (typ websocket.MessageType, msg []byte, release func(), err error) {
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return typ, nil, nil, err
	}
	if needsToken {
		msg, err = io.ReadAll(io.LimitReader(r, maxAuthMessage+1))
		if err == nil && len(msg) > maxAuthMessage {
			err = errAuthTooLarge
		}
		return typ, msg, func() {}, err
	}
	late := time.AfterFunc(c.h.rpc.ArrivalTime(c.h.opts.MaxMessageBytes), func() {
		c.shut(websocket.StatusPolicyViolation, "message did not arrive in time")
	})
	defer late.Stop()
	msg, release, err = c.h.rpc.ReadMessage(c.ctx, r, c.h.opts.MaxMessageBytes)
	return typ, msg, release, err
}

// take answers one message read, the first one authenticating the
// connection when it needs a token; msg holds its share of the body budget
// until release, which take calls itself unless the message is answered.
// It returns false when the connection is done.
func (c *conn) take(typ websocket.MessageType, msg []byte, first *bool, inTime func() bool, release func()) bool {
	answering := false
	defer func() {
		if !answering {
			release()
		}
	}()
	if typ == websocket.MessageText && !utf8.Valid(msg) {
		// RFC 6455 section 8.1: text that is not UTF-8 fails the
		// connection (a binary message is answered -32602, as HTTP).
		c.shutAfterQueued(websocket.StatusInvalidFramePayloadData, "text message is not valid UTF-8")
		return false
	}
	if *first {
		*first = false
		if !inTime() {
			return false
		}
		if !c.authenticate(msg) {
			return true
		}
	}
	if !c.acquire() {
		return false
	}
	if !c.admit() {
		<-c.sem
		return true
	}
	answering = true
	go func() {
		defer c.inflight.Done()
		defer func() { <-c.sem }()
		c.answer(msg, release)
	}()
	return true
}

// acquire takes a slot for one more request, waiting (and not reading)
// while MaxConcurrent run; it returns false once the connection closes.
func (c *conn) acquire() bool {
	select {
	case c.sem <- struct{}{}:
		return true
	default:
	}
	c.readWaits.Add(1)
	defer c.readWaits.Add(1)
	select {
	case c.sem <- struct{}{}:
		return true
	case <-c.closing:
		return false
	}
}

// admit counts one more request in flight, unless the connection is
// draining: a server shutting down takes no new requests.
func (c *conn) admit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return false
	}
	c.inflight.Add(1)
	return true
}

// drainWait bounds how long a shutdown waits for the requests in flight
// on one connection.
const drainWait = 30 * time.Second

// closeGracefully stops the connection taking requests, lets those in flight finish
// and queue their responses (for at most drainWait), then closes it with
// status 1001 after them.
func (c *conn) closeGracefully() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-c.closing:
	case <-time.After(drainWait):
	}
	c.shutAfterQueued(websocket.StatusGoingAway, "server shutting down")
}

// authDeadline closes a connection that still needs a token when its
// first message has not come within AuthTimeout. The function it returns
// is called when the first message arrives: it stops the deadline and
// reports whether the message came in time.
func (c *conn) authDeadline() (inTime func() bool) {
	if c.authenticated {
		return func() bool { return true }
	}
	t := time.AfterFunc(c.h.opts.AuthTimeout, func() {
		c.shut(websocket.StatusPolicyViolation, "authentication timed out")
	})
	return t.Stop
}

// answer runs one message and queues its response, then lets the
// subscriptions it opened start sending: their events follow the
// response that names them. read is the message's share of the body
// budget, given back with what the response holds.
func (c *conn) answer(msg []byte, read func()) {
	s := &session{c: c}
	resp, holds := c.h.rpc.Answer(context.WithValue(c.ctx, sessionKey{}, s), msg)
	release := func() { holds(); read() }
	if resp == nil || !c.queue(outMsg{resp, release}) {
		release()
	}
	s.startSubscriptions()
}

// send queues b for the writer; it waits while the queue is full and
// returns false once the connection is closing.
func (c *conn) send(b []byte) bool {
	return c.queue(outMsg{parts: [][]byte{b}})
}

// queue queues m for the writer as send does; when it returns false, m
// was not queued and the caller releases what it holds.
func (c *conn) queue(m outMsg) bool {
	select {
	case <-c.closing:
		return false
	default:
	}
	select {
	case c.out <- m:
		return true
	case <-c.closing:
		return false
	}
}

// writeLoop writes the queued messages in order, each within
// WriteTimeout, until the connection closes; then it runs the close
// handshake, after the queued messages when shut asked for them.
func (c *conn) writeLoop() {
	for {
		select {
		case <-c.closing:
			if c.flush {
				c.drain()
			}
			_ = c.ws.Close(c.closeCode, c.closeReason)
			return
		case m := <-c.out:
			err := c.write(m.parts)
			m.done()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					c.h.opts.Logger.Warn("ws: write timed out, dropping connection")
				}
				c.shut(websocket.StatusPolicyViolation, "write timed out")
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

// drain writes the messages still queued.
func (c *conn) drain() {
	for {
		select {
		case m := <-c.out:
			err := c.write(m.parts)
			m.done()
			if err != nil {
				return
			}
		default:
			return
		}
	}
}

// write writes parts as one message.
func (c *conn) write(parts [][]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.opts.WriteTimeout)
	defer cancel()
	if len(parts) == 1 {
		return c.ws.Write(ctx, websocket.MessageText, parts[0])
	}
	w, err := c.ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return errors.Join(err, w.Close())
		}
	}
	return w.Close()
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
			if !c.ping(every) {
				c.shut(websocket.StatusPolicyViolation, "ping timed out")
				return
			}
		}
	}
}

// ping pings the peer and reports whether it may be alive: its pong came
// within d, or the read loop, which alone takes pongs in, stopped reading
// meanwhile to wait for a free slot, so that a late pong proves nothing.
func (c *conn) ping(d time.Duration) bool {
	waits := c.readWaits.Load()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if c.ws.Ping(ctx) == nil {
		return true
	}
	return waits%2 == 1 || c.readWaits.Load() != waits
}

// shut closes the connection once, with code and reason: calls and
// subscriptions end, queued messages are dropped, and the writer runs the
// close handshake (bounded by the library's timeouts).
func (c *conn) shut(code websocket.StatusCode, reason string) {
	c.shutWith(code, reason, false)
}

// shutAfterQueued is shut, except that the messages already queued (an
// error explaining why) are written before the close frame.
func (c *conn) shutAfterQueued(code websocket.StatusCode, reason string) {
	c.shutWith(code, reason, true)
}

func (c *conn) shutWith(code websocket.StatusCode, reason string, flush bool) {
	c.shutOnce.Do(func() {
		c.closeCode, c.closeReason, c.flush = code, reason, flush
		close(c.closing)
		c.cancel()
	})
}

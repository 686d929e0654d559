// Package ws serves taskwire's JSON-RPC 2.0 over WebSocket (GET /ws):
// every method of /rpc, answered by the same rpc.Server code path, plus
// event subscriptions pushed as events.event notifications.
//
// Each text or binary message the client sends is one JSON-RPC request
// object or batch; each message the server sends is one response, batch
// response or notification, as text. Requests of one connection run
// concurrently, up to Options.MaxConcurrent at once, so a long-poll
// task.claim does not hold up the others; responses may therefore come in
// any order and are matched by id.
package ws

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/events"
	"github.com/taskwire/taskwire/internal/rpc"
)

// Defaults of Options.
const (
	DefaultMaxMessageBytes  = 64 << 20
	DefaultMaxConcurrent    = 16
	DefaultMaxSubscriptions = 64
	DefaultSendQueue        = 256
	DefaultWriteTimeout     = 10 * time.Second
	DefaultPingInterval     = 20 * time.Second
	DefaultAuthTimeout      = 10 * time.Second
)

// Options tune a Handler; zero values take the defaults.
type Options struct {
	// Authenticate, when set, turns authentication on. It is given the
	// bearer token of the upgrade request's Authorization header (a bad
	// one is HTTP 401 before any upgrade) or, without that header, the
	// token of the connection's first message, which must then be
	// rpc.authenticate {token}. It returns the context every call of the
	// connection runs in (carrying the caller's identity), or an error
	// when the token is not good. Nil means every connection is accepted
	// as is.
	Authenticate func(ctx context.Context, token string) (context.Context, error)
	// Revalidate, with Authenticate, is what Handler.Revalidate asks of
	// every authenticated connection once the tokens have changed: given
	// the context Authenticate returned for it, an error when its token
	// is no longer good (gone, or standing for another caller now). The
	// connection is then closed with status 1008 and the error's text as
	// the reason, its calls and subscriptions ended. Nil: a connection
	// keeps the caller it authenticated as.
	Revalidate func(ctx context.Context) error
	// AuthTimeout is how long a connection that still needs a token may
	// wait before its first message; it is then closed with status 1008
	// (default 10s).
	AuthTimeout time.Duration
	// MaxMessageBytes is the largest message a client may send; a larger
	// one closes the connection with status 1009 (default 64 MiB; larger
	// results go over POST /rpc).
	MaxMessageBytes int64
	// MaxConcurrent is how many requests of one connection run at once;
	// the connection is not read further while that many run (default 16).
	MaxConcurrent int
	// MaxSubscriptions is how many subscriptions one connection may hold
	// (default 64).
	MaxSubscriptions int
	// SendQueue is how many outgoing messages may wait for the socket
	// (default 256). A subscription whose events cannot be queued falls
	// behind in the event hub, which drops it past its own bound; the
	// connection is then closed with status 1008 "slow consumer".
	SendQueue int
	// WriteTimeout bounds the write of one message; a peer that does not
	// take it in time is disconnected (default 10s).
	WriteTimeout time.Duration
	// PingInterval is how often the server pings; a pong must come back
	// within the same interval or the connection is closed (default 20s).
	PingInterval time.Duration
	// Logger receives failed subscriptions and dropped connections
	// (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Handler is the http.Handler of GET /ws. It is safe for concurrent use.
type Handler struct {
	rpc  *rpc.Server
	hub  *events.Hub
	opts Options

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	// revalidations counts the calls of Revalidate, so that a connection
	// authenticated while one ran is checked as well.
	revalidations atomic.Uint64
}

// NewHandler returns the WebSocket handler answering with rpcServer, whose
// method table should include Subscribe and Unsubscribe, and taking events
// from hub.
func NewHandler(rpcServer *rpc.Server, hub *events.Hub, opts Options) *Handler {
	return &Handler{rpc: rpcServer, hub: hub, opts: opts.withDefaults(), conns: map[*conn]struct{}{}}
}

// ServeHTTP upgrades the request to a WebSocket and serves it until either
// side closes it. With authentication on, a bad Authorization header is
// HTTP 401 with a JSON-RPC error object, and nothing is upgraded; so is
// every refused upgrade (another HTTP method than GET is 405), with the
// status that says why.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeHTTPError(w, http.StatusMethodNotAllowed, taskwire.Errorf(taskwire.CodeInvalidRequest,
			"Invalid Request: HTTP method %s is not allowed, use GET", r.Method))
		return
	}
	ctx := rpc.WithClientAddr(r.Context(), r.RemoteAddr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	authenticated := h.opts.Authenticate == nil
	revalidations := h.revalidations.Load()
	if header := r.Header.Get("Authorization"); header != "" && h.opts.Authenticate != nil {
		token := auth.BearerToken(header)
		var err error
		if token != "" {
			ctx, err = h.opts.Authenticate(ctx, token)
		}
		if token == "" || err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="taskwire"`)
			writeHTTPError(w, http.StatusUnauthorized, unauthorized("invalid bearer token"))
			return
		}
		authenticated = true
	}
	if h.isClosed() {
		writeHTTPError(w, http.StatusServiceUnavailable,
			taskwire.Errorf(taskwire.CodeUnavailable, "Server shutting down"))
		return
	}
	ws, err := websocket.Accept(&refusals{ResponseWriter: w}, r, nil)
	if err != nil {
		// Accept has answered the request already.
		return
	}
	ws.SetReadLimit(h.opts.MaxMessageBytes)
	c := newConn(h, ws, ctx, cancel, authenticated)
	if !h.add(c) {
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	defer h.remove(c)
	c.revalidateSince(revalidations)
	c.run()
}

// Revalidate checks every authenticated connection with
// Options.Revalidate, and closes with status 1008 each whose token is no
// longer good; call it once the tokens have changed. A connection
// authenticating meanwhile is checked once it has. Without
// Options.Revalidate it does nothing.
func (h *Handler) Revalidate() {
	if h.opts.Revalidate == nil {
		return
	}
	h.revalidations.Add(1)
	for _, c := range h.open() {
		c.revalidate()
	}
}

// Close refuses new connections and, on every open one, stops taking
// requests, waits for those in flight to be answered, and closes it with
// status 1001 after their responses, ahead of a shutdown
// (http.Server.Shutdown does not wait for upgraded connections). Long
// polls should be released first (service.Drain). It is safe to call more
// than once.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range h.open() {
		wg.Go(c.closeGracefully)
	}
	wg.Wait()
}

// Connections returns how many WebSocket connections are open.
func (h *Handler) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// open returns the connections open now.
func (h *Handler) open() []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	return conns
}

func (h *Handler) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

func (h *Handler) add(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *Handler) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
}

package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/servertest"
	"github.com/taskwire/taskwire/internal/ws"
)

// wait bounds every wait in these tests: a failure guard, not a measure.
const wait = 15 * time.Second

// bundle is one in-process server on a fresh SQLite file, reached over
// real HTTP and WebSocket on loopback.
type bundle struct {
	srv *server.Server
	url string // http://127.0.0.1:PORT
	cl  *rpctest.Client
}

// setup starts a server with rate limits off; edit changes its config.
func setup(t testing.TB, edit ...func(*server.Config)) *bundle {
	t.Helper()
	cfg := servertest.Config(t)
	for _, e := range edit {
		e(&cfg)
	}
	return start(t, cfg, nil)
}

// start runs a server with cfg; wrap, when not nil, wraps its listener.
func start(t testing.TB, cfg server.Config, wrap func(net.Listener) net.Listener) *bundle {
	t.Helper()
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s.Handler())
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	t.Cleanup(func() {
		s.Drain()
		hs.Close()
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &bundle{srv: s, url: hs.URL, cl: rpctest.New(hs.URL)}
}

// wsOptions sets the WebSocket options of the server.
func wsOptions(o ws.Options) func(*server.Config) {
	return func(c *server.Config) { c.WebSocket = o }
}

// message is any message the server sends: a response or a notification.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *taskwire.Error `json:"error"`
	raw    []byte
	seq    int // order of arrival on the connection
}

// client is a WebSocket client that sorts what it reads into responses
// and events.event notifications.
type client struct {
	t     testing.TB
	c     *websocket.Conn
	resps chan message
	notes chan message
	// done is closed when reading stops; err then says why.
	done chan struct{}
	err  error
	// delay, when set, is slept after reading each message: a slow
	// consumer.
	delay time.Duration

	mu      sync.Mutex
	seq     int
	pending map[string]message // responses read while waiting for another
}

// dial opens a WebSocket to b with the given header (may be nil) and
// starts reading.
func dial(t testing.TB, b *bundle, header http.Header) *client {
	t.Helper()
	return dialWith(t, b, &websocket.DialOptions{HTTPHeader: header}, 0)
}

// dialWith opens a WebSocket to b with opts and starts reading, sleeping
// delay after each message.
func dialWith(t testing.TB, b *bundle, opts *websocket.DialOptions, delay time.Duration) *client {
	t.Helper()
	c, resp, err := websocket.Dial(context.Background(), wsURL(b), opts)
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	c.SetReadLimit(-1)
	cl := &client{t: t, c: c, resps: make(chan message, 1024), notes: make(chan message, 100000),
		done: make(chan struct{}), pending: map[string]message{}, delay: delay}
	go cl.read()
	t.Cleanup(func() { _ = c.CloseNow() })
	return cl
}

func wsURL(b *bundle) string { return "ws" + strings.TrimPrefix(b.url, "http") + "/ws" }

func (cl *client) read() {
	defer close(cl.done)
	for seq := 1; ; seq++ {
		_, b, err := cl.c.Read(context.Background())
		if err != nil {
			cl.err = err
			return
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			// A batch response: keep it whole.
			m = message{ID: json.RawMessage("batch")}
		}
		m.raw, m.seq = b, seq
		time.Sleep(cl.delay)
		if m.Method != "" {
			cl.notes <- m
		} else {
			cl.resps <- m
		}
	}
}

// send writes one raw message.
func (cl *client) send(msg string) {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		cl.t.Fatalf("write %.100s: %v", msg, err)
	}
}

// request sends a request for method and returns its id.
func (cl *client) request(method string, params any) string {
	cl.t.Helper()
	cl.mu.Lock()
	cl.seq++
	n := cl.seq
	cl.mu.Unlock()
	id := fmt.Sprint(n)
	req := map[string]any{"jsonrpc": "2.0", "id": n, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, err := json.Marshal(req)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.send(string(b))
	return id
}

// response waits for the response with id (or any batch response when id
// is "batch").
func (cl *client) response(id string) message {
	cl.t.Helper()
	cl.mu.Lock()
	if m, ok := cl.pending[id]; ok {
		delete(cl.pending, id)
		cl.mu.Unlock()
		return m
	}
	cl.mu.Unlock()
	timeout := time.After(wait)
	for {
		select {
		case m := <-cl.resps:
			if string(m.ID) == id {
				return m
			}
			cl.mu.Lock()
			cl.pending[string(m.ID)] = m
			cl.mu.Unlock()
		case <-cl.done:
			if len(cl.resps) > 0 {
				// Read before the connection ended: look at them first.
				continue
			}
			cl.t.Fatalf("connection ended waiting for response %s: %v", id, cl.err)
		case <-timeout:
			cl.t.Fatalf("no response %s within %s", id, wait)
		}
	}
}

// call calls method and decodes its result into an R; an error fails the
// test.
func call[R any](cl *client, method string, params any) R {
	cl.t.Helper()
	m := cl.response(cl.request(method, params))
	if m.Error != nil {
		cl.t.Fatalf("%s: %v", method, m.Error)
	}
	var out R
	if err := json.Unmarshal(m.Result, &out); err != nil {
		cl.t.Fatalf("%s: result %s: %v", method, m.Result, err)
	}
	return out
}

// callErr calls method, which must fail, and returns the error.
func (cl *client) callErr(method string, params any) *taskwire.Error {
	cl.t.Helper()
	m := cl.response(cl.request(method, params))
	if m.Error == nil {
		cl.t.Fatalf("%s: want an error, got %s", method, m.Result)
	}
	return m.Error
}

// subscribe subscribes with params and returns the subscription id.
func (cl *client) subscribe(params any) string {
	cl.t.Helper()
	return call[taskwire.SubscribeResult](cl, taskwire.MethodEventsSubscribe, params).Subscription
}

// next waits for the next message of ch (cl.resps or cl.notes).
func (cl *client) next(ch chan message) message {
	cl.t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		cl.t.Fatalf("no message within %s", wait)
	}
	return message{}
}

// nextEvent waits for the next events.event notification.
func (cl *client) nextEvent() message {
	cl.t.Helper()
	m := cl.next(cl.notes)
	if m.Method != taskwire.MethodEventsEvent {
		cl.t.Fatalf("notification %s, want %s", m.Method, taskwire.MethodEventsEvent)
	}
	return m
}

// event waits for the next events.event notification and returns its
// params.
func (cl *client) event() taskwire.EventNotification {
	cl.t.Helper()
	return decode[taskwire.EventNotification](cl.t, message{Result: cl.nextEvent().Params})
}

// decode decodes the result of a successful response.
func decode[R any](t testing.TB, m message) R {
	t.Helper()
	var out R
	if m.Error != nil {
		t.Fatalf("error %v", m.Error)
	}
	if err := json.Unmarshal(m.Result, &out); err != nil {
		t.Fatalf("result %s: %v", m.Result, err)
	}
	return out
}

// noEvent checks that no notification is waiting.
func (cl *client) noEvent() {
	cl.t.Helper()
	select {
	case m := <-cl.notes:
		cl.t.Errorf("unexpected notification %s", m.raw)
	default:
	}
}

// closed waits for the connection to end and returns its close error.
func (cl *client) closed() error {
	cl.t.Helper()
	select {
	case <-cl.done:
		return cl.err
	case <-time.After(wait):
		cl.t.Fatalf("connection still open after %s", wait)
	}
	return nil
}

// wantClose checks that the connection ended with code and a reason
// containing reason.
func (cl *client) wantClose(code websocket.StatusCode, reason string) {
	cl.t.Helper()
	err := cl.closed()
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		cl.t.Fatalf("connection ended with %v, want close status %d", err, code)
	}
	if ce.Code != code || !strings.Contains(ce.Reason, reason) {
		cl.t.Errorf("closed with %d %q, want %d with %q", ce.Code, ce.Reason, code, reason)
	}
}

// createTask creates a task over HTTP and returns it.
func createTask(t testing.TB, b *bundle, text string) taskwire.Task {
	t.Helper()
	var task taskwire.Task
	if err := b.cl.Call(context.Background(), taskwire.MethodTaskCreate, map[string]any{"text": text}, &task); err != nil {
		t.Fatal(err)
	}
	return task
}

// eventually waits until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type wsOpt = ws.Options

// wsOpts returns options edited by edit.
func wsOpts(edit func(*wsOpt)) ws.Options {
	var o ws.Options
	edit(&o)
	return o
}

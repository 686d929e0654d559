package ws_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/servertest"
	"github.com/taskwire/taskwire/internal/ws"
)

// smallBuffers makes every accepted connection's send buffer small, so
// that a client that reads slowly holds the server's writes up after a
// few kilobytes rather than megabytes of kernel buffers.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// smallReadBuffer dials with a small receive buffer.
func smallReadBuffer() *http.Client {
	d := &net.Dialer{}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return c, err
	}}}
}

// A subscriber that reads slower than events come is disconnected with
// status 1008 "slow consumer" once it falls too far behind, while a fast
// subscriber on another connection receives every event.
func TestSlowConsumerDisconnected(t *testing.T) {
	t.Parallel()
	cfg := servertest.Config(t)
	cfg.WebSocket = ws.Options{SendQueue: 8}
	b := start(t, cfg, func(l net.Listener) net.Listener { return smallBuffers{l} })
	slow := dialWith(t, b, &websocket.DialOptions{HTTPClient: smallReadBuffer()}, 5*time.Millisecond)
	slow.subscribe(map[string]any{})
	fast := dial(t, b, nil)
	fast.subscribe(map[string]any{})

	// Create tasks in batches until the hub drops the slow subscription.
	created := 0
	for b.srv.Hub().Subscribers() == 2 {
		if created >= 50000 {
			t.Fatalf("slow subscriber still connected after %d events", created)
		}
		calls := make([]rpctest.Call, 100)
		for i := range calls {
			calls[i] = rpctest.Call{Method: taskwire.MethodTaskCreate, Params: map[string]any{"text": "task " + strconv.Itoa(created+i)}}
		}
		if _, err := b.cl.Batch(context.Background(), calls); err != nil {
			t.Fatal(err)
		}
		created += len(calls)
	}
	slow.wantClose(websocket.StatusPolicyViolation, "slow consumer")
	if got := len(slow.notes); got >= created {
		t.Errorf("slow consumer received all %d events", got)
	}
	// The fast subscriber got every event, in order.
	for i := range created {
		n := fast.event()
		if n.Event.Type != taskwire.EventTaskCreated {
			t.Fatalf("event %d: %s", i, n.Event.Type)
		}
	}
	t.Logf("slow consumer dropped after %d events created, having received %d", created, len(slow.notes))
}

// Pings keep a reading client's idle connection open; a peer that stops
// answering them is disconnected and cleaned up.
func TestPingAndDeadPeer(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(ws.Options{PingInterval: time.Second}))
	alive := dial(t, b, nil)
	alive.subscribe(map[string]any{})
	// A client that never reads never answers a ping.
	dead, _, err := websocket.Dial(context.Background(), wsURL(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.CloseNow()
	// Counted first, so that the wait below is for its disconnection.
	eventually(t, "dead peer connected", func() bool { return b.srv.WebSocket().Connections() == 2 })
	eventually(t, "dead peer disconnected", func() bool { return b.srv.WebSocket().Connections() == 1 })
	time.Sleep(2500 * time.Millisecond) // several ping intervals
	call[taskwire.HealthResult](alive, taskwire.MethodSystemHealth, nil)
	createTask(t, b, "still live")
	if n := alive.event(); n.Event.Type != taskwire.EventTaskCreated {
		t.Errorf("event %s, want task.created", n.Event.Type)
	}
	if n := b.srv.WebSocket().Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// A server shutting down closes its connections with 1001.
func TestDrainClosesConnections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	idle := dial(t, b, nil)
	subscribed := dial(t, b, nil)
	subscribed.subscribe(map[string]any{"types": []string{"task.created"}})
	b.srv.Drain()
	idle.wantClose(websocket.StatusGoingAway, "shutting down")
	subscribed.wantClose(websocket.StatusGoingAway, "shutting down")
	_, resp, err := websocket.Dial(context.Background(), wsURL(b), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after drain: %v, %v; want HTTP 503", err, resp)
	}
}

// A server shutting down answers the calls in flight before it closes a
// connection with 1001: a waiting long poll gets {claimed: false}, on a
// connection with a subscription too.
func TestDrainAnswersCallsInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	cl.subscribe(map[string]any{})
	call[taskwire.RegisterResult](cl, taskwire.MethodSystemRegister, map[string]any{"id": "w1", "queues": []string{"empty"}})
	claim := cl.request(taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 30000})
	// The server reads messages in order: once this one is answered, the
	// claim is in flight.
	call[taskwire.HealthResult](cl, taskwire.MethodSystemHealth, nil)
	b.srv.Drain()
	if got := decode[taskwire.ClaimResult](t, cl.response(claim)); got.Claimed {
		t.Errorf("claim during shutdown = %+v, want claimed false", got)
	}
	cl.wantClose(websocket.StatusGoingAway, "shutting down")
}

// A connection whose read loop waits for a free slot (MaxConcurrent
// requests running) does not read the pongs of its live peer meanwhile;
// that is not held against the peer: the calls are answered and the
// connection stays open.
func TestPingWhileRequestsFillTheSlots(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(ws.Options{PingInterval: 200 * time.Millisecond, MaxConcurrent: 1}))
	cl := dial(t, b, nil)
	call[taskwire.RegisterResult](cl, taskwire.MethodSystemRegister, map[string]any{"id": "w1", "queues": []string{"empty"}})
	// The claim holds the one slot for many ping intervals; the health
	// call behind it stops the reading until the claim is answered.
	claim := cl.request(taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 2000})
	health := cl.request(taskwire.MethodSystemHealth, nil)
	if got := decode[taskwire.ClaimResult](t, cl.response(claim)); got.Claimed {
		t.Errorf("claim = %+v, want claimed false", got)
	}
	decode[taskwire.HealthResult](t, cl.response(health))
	call[taskwire.HealthResult](cl, taskwire.MethodSystemHealth, nil)
}

// A message that does not arrive in the time a request body of the
// largest message's size may take (BodyGrace plus a second per MiB) ends
// the connection with 1008, so that a stalled sender holds neither the
// connection nor its share of the body budget.
func TestStalledMessageClosed(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(ws.Options{MaxMessageBytes: 2 << 20}), func(c *server.Config) { c.BodyGrace = 100 * time.Millisecond })
	cl := dial(t, b, nil)
	w, err := cl.c.Writer(context.Background(), websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"` + strings.Repeat("x", 3<<19))); err != nil {
		t.Fatal(err)
	}
	cl.wantClose(websocket.StatusPolicyViolation, "message did not arrive in time")
}

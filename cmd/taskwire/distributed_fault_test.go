package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// pgProxy forwards TCP connections to PostgreSQL; down cuts every
// connection and refuses new ones until up, which is what a taskwire
// process sees of a PostgreSQL outage.
type pgProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	isUp  bool
}

func startPGProxy(t *testing.T, target string) *pgProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{ln: ln, conns: map[net.Conn]bool{}, isUp: true}
	t.Cleanup(func() { ln.Close(); p.down() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target)
		}
	}()
	return p
}

func (p *pgProxy) serve(c net.Conn, target string) {
	p.mu.Lock()
	up := p.isUp
	p.mu.Unlock()
	if !up {
		c.Close()
		return
	}
	s, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
	c.Close()
}

// down cuts every connection and refuses new ones.
func (p *pgProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isUp = false
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *pgProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isUp = true
}

// pgOutage is how long TestDistributedPostgresOutage keeps PostgreSQL cut
// off: long enough that connections, pools and retries all give up on it
// at least once.
const pgOutage = 20 * time.Second

// TestDistributedPostgresOutage cuts PostgreSQL off mid-run for pgOutage:
// creates answer -32001 with retryAfterMs, claims and heartbeats keep
// working, completions wait and are retried; once it is back every
// acknowledged task is completed once and the outbox has brought
// PostgreSQL level with Redis.
func TestDistributedPostgresOutage(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	proxy := startPGProxy(t, "127.0.0.1:5432")
	pgURL := strings.Replace(env.pgURL, "127.0.0.1:5432", proxy.ln.Addr().String(), 1)
	srv := rpctest.New(env.start(t, pgURL).URL)
	ctx := context.Background()
	f := newFleet()
	f.create(ctx, t, []*rpctest.Client{srv}, 600)
	outage := make(chan struct{})
	go func() {
		defer close(outage)
		for f.left.Load() > 400 {
			time.Sleep(5 * time.Millisecond)
		}
		proxy.down()
		t.Logf("PostgreSQL cut off with %d tasks left", f.left.Load())
		probeOutage(t, srv)
		time.Sleep(pgOutage / 2)
		probeOutage(t, srv) // still coordinating from Redis alone
		time.Sleep(pgOutage / 2)
		proxy.up()
	}()
	f.run(t, 10, 2*time.Minute, func(int) *rpctest.Client { return srv })
	<-outage
	f.report(t, false)
	env.agree(t)
}

// probeOutage checks what a client sees while PostgreSQL is down.
func probeOutage(t *testing.T, srv *rpctest.Client) {
	ctx := context.Background()
	for _, id := range []string{"probe", "probe2"} {
		if err := srv.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"id": id}, nil); err != nil {
			t.Errorf("register during the outage: %v, want it to work from Redis", err)
		}
	}
	err := srv.Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "during the outage"}, nil)
	var rpcErr *taskwire.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != taskwire.CodeUnavailable {
		t.Errorf("create during the outage: %v, want -32001", err)
	} else if data, _ := rpcErr.Data.(map[string]any); data["retryAfterMs"] == nil {
		t.Errorf("create during the outage: data %v, want retryAfterMs", rpcErr.Data)
	}
	var alive map[string]any
	if err := srv.Call(ctx, taskwire.MethodSystemHeartbeat, map[string]any{"workerId": "probe"}, &alive); err != nil || alive["alive"] != true {
		t.Errorf("heartbeat during the outage: %v %v, want alive", alive, err)
	}
	var res taskwire.ClaimResult
	if err := srv.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "probe2"}, &res); err != nil {
		t.Errorf("claim during the outage: %v, want it to work from Redis", err)
	}
	if res.Claimed {
		// Complete it later, through the fleet's accounting: give it back.
		_ = srv.Call(ctx, taskwire.MethodSystemUnregister, map[string]any{"workerId": "probe2"}, nil)
	}
}

// TestDistributedProcessKilled kills one of two server processes (SIGKILL)
// mid-run; its workers go on through the other. Every acknowledged task is
// completed once, and both stores agree.
func TestDistributedProcessKilled(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	a, b := env.start(t, ""), env.start(t, "")
	ca, cb := rpctest.New(a.URL), rpctest.New(b.URL)
	f := newFleet()
	f.taskParams = map[string]any{"leaseMs": 3000} // claims whose answer died with the process come back soon
	f.create(context.Background(), t, []*rpctest.Client{ca, cb}, 900)
	var killed atomic.Bool
	go func() {
		for f.left.Load() > 600 {
			time.Sleep(5 * time.Millisecond)
		}
		if err := a.cmd.Process.Kill(); err != nil {
			t.Error(err)
		}
		killed.Store(true)
		t.Logf("process A killed with %d tasks left", f.left.Load())
	}()
	f.run(t, 10, 2*time.Minute, func(i int) *rpctest.Client {
		if i%2 == 0 && !killed.Load() {
			return ca
		}
		return cb
	})
	f.report(t, false)
	if err := cb.Call(context.Background(), taskwire.MethodTaskList, map[string]any{"limit": 1}, nil); err != nil {
		t.Fatal(err) // task.list applies the outbox, the dead process's entries included
	}
	env.agree(t)
}

// TestDistributedResultBackendDown: GET /v1/tasks/{id}/result of a
// completed task while PostgreSQL, then Redis, is cut off answers HTTP 503
// with the -32001 of that backend and its retryAfterMs, before any byte of
// the result: never a 200 whose body stops short, never -32603. So do
// GET /v1/tasks/{id}/events and GET /events resuming from an id while
// Redis, which holds the events, is.
func TestDistributedResultBackendDown(t *testing.T) {
	t.Parallel()
	env := newDistEnv(t)
	pgProxy := startPGProxy(t, "127.0.0.1:5432")
	redisProxy := startPGProxy(t, env.addr)
	pgURL := strings.Replace(env.pgURL, "127.0.0.1:5432", pgProxy.ln.Addr().String(), 1)
	srv := env.start(t, pgURL, "--redis", strings.Replace(env.redisURL(), env.addr, redisProxy.ln.Addr().String(), 1))
	cl := rpctest.New(srv.URL)
	ctx := context.Background()
	var created taskwire.Task
	var claim taskwire.ClaimResult
	for _, call := range []struct {
		method string
		params map[string]any
		out    any
	}{
		{taskwire.MethodSystemRegister, map[string]any{"id": "w1"}, nil},
		{taskwire.MethodTaskCreate, map[string]any{"text": "big result"}, &created},
		{taskwire.MethodTaskClaim, map[string]any{"workerId": "w1"}, &claim},
		{taskwire.MethodTaskComplete, map[string]any{"id": &created.ID, "workerId": "w1",
			"result": strings.Repeat("x", 3<<20)}, nil},
	} {
		if err := cl.Call(ctx, call.method, call.params, call.out); err != nil {
			t.Fatalf("%s: %v", call.method, err)
		}
	}
	pgProxy.down()
	expectUnavailable(t, srv.URL+"/v1/tasks/"+created.ID+"/result", "postgres")
	pgProxy.up()
	redisProxy.down()
	expectUnavailable(t, srv.URL+"/v1/tasks/"+created.ID+"/result", "redis")
	expectUnavailable(t, srv.URL+"/v1/tasks/"+created.ID+"/events", "redis")
	expectUnavailable(t, srv.URL+"/events?lastEventId=1", "redis")
}

// expectUnavailable checks that a GET of url answers 503 with the -32001
// of backend.
func expectUnavailable(t *testing.T, url, backend string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	var got struct {
		Error taskwire.Error `json:"error"`
	}
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &got) != nil ||
		got.Error.Code != taskwire.CodeUnavailable {
		t.Fatalf("GET %s with %s cut off: HTTP %d, %d bytes (read: %v) %.200s; want 503 and -32001",
			url, backend, resp.StatusCode, len(body), err, body)
	}
	data, _ := got.Error.Data.(map[string]any)
	if data["backend"] != backend || data["retryAfterMs"] == nil {
		t.Errorf("GET %s with %s cut off: data %v, want {backend: %s, retryAfterMs}", url, backend, got.Error.Data, backend)
	}
}

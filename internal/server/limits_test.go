package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpc"
)

// nested returns a JSON value nesting depth levels of objects and arrays.
func nested(depth int) string {
	var open, close strings.Builder
	for i := range depth {
		if i%2 == 0 {
			open.WriteString(`{"k":`)
			close.WriteString("}")
		} else {
			open.WriteString("[")
			close.WriteString("]")
		}
	}
	c := []rune(close.String())
	for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
		c[i], c[j] = c[j], c[i]
	}
	return open.String() + "1" + string(c)
}

func TestNestingDepth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	var deep map[string]any
	if err := unmarshal([]byte(nested(rpc.MaxDepth+1)), &deep); err != nil {
		t.Fatal(err)
	}
	var ok map[string]any
	if err := unmarshal([]byte(nested(rpc.MaxDepth)), &ok); err != nil {
		t.Fatal(err)
	}
	// At the bound: accepted.
	task := createTask(t, b, params{"metadata": ok})
	// One level more: refused, naming the param, nothing created.
	wantInvalid(t, b, taskwire.MethodTaskCreate, params{"text": "x", "metadata": deep}, "metadata: nested deeper than 64 levels")
	if n := taskCount(t, b); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
	claimOne(t, b, "w1")
	before := getTask(t, b, task.ID)
	wantInvalid(t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"metadata": deep}}, "updates: nested deeper")
	wantInvalid(t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "result": deep}, "result: nested deeper")
	// (Compared as text: a structural diff of 64 levels takes too long.)
	if after := getTask(t, b, task.ID); jsonText(after) != jsonText(before) {
		t.Errorf("refused calls changed the task:\n%s\n%s", clipText(jsonText(before)), clipText(jsonText(after)))
	}
	// Deeper than the JSON decoder's own bound (10,000): a parse error,
	// not a crash.
	status, raw := post(t, b, `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"x","metadata":`+nested(20000)+`}}`)
	if status != 200 || !strings.Contains(string(raw), fmt.Sprint(taskwire.CodeParseError)) {
		t.Errorf("20,000 levels: HTTP %d %s, want a -32700", status, clipText(string(raw)))
	}
}

func TestBatchLimitConfigured(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxBatch = 3 })
	call := `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"x"}}`
	status, raw := post(t, b, "["+strings.Repeat(call+",", 3)+call+"]")
	got := rawObject(t, raw)
	e, _ := got["error"].(map[string]any)
	if status != 200 || e["code"] != float64(taskwire.CodeInvalidRequest) ||
		fmt.Sprint(e["data"]) != "map[field:batch limit:3]" {
		t.Errorf("batch of 4 against 3: HTTP %d %s, want -32600 {field: batch, limit: 3}", status, raw)
	}
	if n := taskCount(t, b); n != 0 {
		t.Errorf("a refused batch created %d tasks", n)
	}
}

// TestWaitingClaimsCap: a worker may have MaxWaitingClaims long polls
// waiting; one more is -32000 with retryAfterMs, a claim without waitMs
// and another worker's long poll still go through.
func TestWaitingClaimsCap(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxWaitingClaims = 2 })
	register(t, b, "w1")
	register(t, b, "w2")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			// Until admitted: a probe below may hold a slot for a moment.
			for ctx.Err() == nil {
				err := b.cl.Call(ctx, taskwire.MethodTaskClaim, params{"workerId": "w1", "waitMs": 30000}, nil)
				if e, ok := err.(*taskwire.Error); !ok || e.Code != taskwire.CodeRateLimited {
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	// Wait until both polls are waiting: a third is then refused.
	deadline := time.Now().Add(10 * time.Second)
	var e *taskwire.Error
	for {
		var r taskwire.ClaimResult
		err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim, params{"workerId": "w1", "waitMs": 1}, &r)
		if err != nil {
			e = err.(*taskwire.Error)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a third waiting claim was still accepted after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]any{"method": "task.claim", "limit": float64(2), "windowMs": float64(0), "retryAfterMs": float64(1000)}
	if e.Code != taskwire.CodeRateLimited || fmt.Sprint(e.Data) != fmt.Sprint(want) {
		t.Errorf("third waiting claim: %d %v, want -32000 %v", e.Code, e.Data, want)
	}
	claim(t, b, "w1", nil)
	claim(t, b, "w2", params{"waitMs": 1})
	cancel()
	wg.Wait()
	// Once the polls have ended, w1 may wait again.
	deadline = time.Now().Add(10 * time.Second)
	for {
		err := b.cl.Call(context.Background(), taskwire.MethodTaskClaim, params{"workerId": "w1", "waitMs": 1}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("w1 still refused 10s after its polls ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBrokenBody: a body that cannot be read whole (chunked framing that
// is not, or a body cut short of its Content-Length) is answered with a
// -32700, HTTP 200 as every JSON-RPC response (SPEC 1), never an empty
// 200.
func TestBrokenBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, req := range map[string]string{
		"bad chunk size": "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
		"cut short":      "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":\"2.0\"",
	} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprint(conn, req)
			_ = conn.(*net.TCPConn).CloseWrite()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			if !strings.HasPrefix(string(got), "HTTP/1.1 200") || !strings.Contains(string(got), `"code":-32700`) {
				t.Errorf("answer %q, want 200 with a -32700", got)
			}
		})
	}
}

// TestSlowBody: a body that does not arrive within the grace is answered
// with a -32600 (HTTP 200, as every JSON-RPC response) and the connection
// does not stay tied up.
func TestSlowBody(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.BodyGrace = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer to a trickling body within 10s: %v", err)
	}
	if got := string(buf[:n]); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, `"code":-32600`) {
		t.Errorf("answer %q, want 200 with a -32600", got)
	}
	// A long poll on another connection is not cut by the body deadline.
	register(t, b, "w1")
	start := time.Now()
	r := claim(t, b, "w1", params{"waitMs": 1000})
	if r.Claimed || time.Since(start) < 900*time.Millisecond {
		t.Errorf("a 1s long poll after a 300ms body grace: claimed %v after %s", r.Claimed, time.Since(start))
	}
}

// TestShutdownWaitsForBodies: a request whose body is still arriving when
// the server stops is read to its end and answered, and Serve returns
// nil. The wait covers the longest body the server takes.
func TestShutdownWaitsForBodies(t *testing.T) {
	t.Parallel()
	s, err := New(context.Background(), Config{DataDir: t.TempDir(), Logger: discardLogger(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if want := rpc.DefaultBodyGrace + time.Duration(rpc.DefaultMaxBodyBytes/rpc.MinBodyRate)*time.Second; s.shutdownGrace <= want {
		t.Errorf("shutdown grace %s, want more than the longest body's %s", s.shutdownGrace, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, "127.0.0.1:0", func(addr string) { addrc <- addr }) }()
	conn, err := net.Dial("tcp", <-addrc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"sent slowly"}}`
	fmt.Fprintf(conn, "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
	time.Sleep(100 * time.Millisecond) // the server is reading the body
	cancel()
	time.Sleep(100 * time.Millisecond)
	fmt.Fprint(conn, body[10:])
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a body in flight at shutdown: %v", err)
	}
	defer resp.Body.Close()
	var got struct {
		Result *taskwire.Task
		Error  *taskwire.Error
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Result == nil || got.Result.Text != "sent slowly" {
		t.Errorf("answer %s: %+v (%v), want the task created", resp.Status, got, err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last request")
	}
}

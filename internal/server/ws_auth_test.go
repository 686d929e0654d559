package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
)

// TestWebSocketTokens: with tokens configured, GET /ws takes the token of
// the upgrade's Authorization header or of rpc.authenticate as its first
// message, checked against the tokens file, and every call on the socket
// runs with that token's role: a producer follows the events, a worker
// may not, and an unknown token is refused before anything else runs.
func TestWebSocketTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens(t, nil))
	wsURL := "ws" + strings.TrimPrefix(b.url, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	dial := func(header http.Header) *websocket.Conn {
		t.Helper()
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: header})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	call := func(c *websocket.Conn, method string, params any) (result json.RawMessage, errObj *taskwire.Error) {
		t.Helper()
		req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
		if err := c.Write(ctx, websocket.MessageText, req); err != nil {
			t.Fatalf("%s: write: %v", method, err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: read: %v", method, err)
		}
		var resp struct {
			Result json.RawMessage `json:"result"`
			Error  *taskwire.Error `json:"error"`
		}
		if err := json.Unmarshal(msg, &resp); err != nil {
			t.Fatalf("%s: %s: %v", method, msg, err)
		}
		return resp.Result, resp.Error
	}

	// A producer authenticating with its first message may subscribe.
	producer := dial(nil)
	if _, e := call(producer, taskwire.MethodAuthenticate, map[string]string{"token": producerToken}); e != nil {
		t.Fatalf("producer token refused: %+v", e)
	}
	if _, e := call(producer, taskwire.MethodEventsSubscribe, map[string]any{}); e != nil {
		t.Errorf("producer subscribe: %+v, want a subscription", e)
	}
	// A worker (header token) may not follow the events, and acts as w1 only.
	worker := dial(http.Header{"Authorization": {"Bearer " + workerToken}})
	if _, e := call(worker, taskwire.MethodEventsSubscribe, map[string]any{}); e == nil || e.Code != taskwire.CodeNotAllowed {
		t.Errorf("worker subscribe: error %+v, want -32002", e)
	}
	if _, e := call(worker, taskwire.MethodSystemRegister, map[string]any{"id": "w2"}); e == nil || e.Code != taskwire.CodeNotAllowed {
		t.Errorf("worker registering as another worker: error %+v, want -32002", e)
	}
	if _, e := call(worker, taskwire.MethodSystemRegister, map[string]any{"id": "w1"}); e != nil {
		t.Errorf("worker registering itself: %+v", e)
	}
	// An unknown token: 401 at the upgrade, or -32002 and a close for the
	// first message.
	if _, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer not-a-token-at-all"}}}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown header token: err %v, want HTTP 401", err)
	}
	stranger := dial(nil)
	if _, e := call(stranger, taskwire.MethodAuthenticate, map[string]string{"token": "not-a-token-at-all"}); e == nil || e.Code != taskwire.CodeNotAllowed {
		t.Errorf("unknown first-message token: error %+v, want -32002", e)
	}
	if _, _, err := stranger.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("after an unknown token: %v, want close 1008", err)
	}
}

// TestWebSocketAuthAfterReload: a reload of the tokens file closes, with
// status 1008 and a reason, every open WebSocket whose token it removed
// or rebound to another role or worker, subscriptions included, while a
// connection whose token it kept goes on calling and receiving events.
func TestWebSocketAuthAfterReload(t *testing.T) {
	t.Parallel()
	const otherAdmin = "other-admin-token-0123456789"
	entries := map[string]string{
		"ops":      `{"name": "ops", "role": "admin", "token": "` + adminToken + `"}`,
		"ops2":     `{"name": "ops2", "role": "admin", "token": "` + otherAdmin + `"}`,
		"shop":     `{"name": "shop", "role": "producer", "token": "` + producerToken + `"}`,
		"w1-token": `{"name": "w1-token", "role": "worker", "workerId": "w1", "sha256": "` + auth.Hash(workerToken) + `"}`,
	}
	path := filepath.Join(t.TempDir(), "tokens.json")
	write := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("["+strings.Join(lines, ",")+"]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(entries["ops"], entries["ops2"], entries["shop"], entries["w1-token"])
	tokens, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *Config) { c.Tokens = tokens })
	wsURL := "ws" + strings.TrimPrefix(b.url, "http") + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// open dials with token in the header, or in rpc.authenticate when
	// first is set.
	open := func(token string, first bool) *websocket.Conn {
		t.Helper()
		var opts websocket.DialOptions
		if !first {
			opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
		}
		c, _, err := websocket.Dial(ctx, wsURL, &opts)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if first {
			wsCall(ctx, t, c, taskwire.MethodAuthenticate, map[string]string{"token": token})
		}
		return c
	}
	kept := open(adminToken, false)
	keptFirst := open(otherAdmin, true)
	removed := open(producerToken, true)
	for _, c := range []*websocket.Conn{kept, keptFirst, removed} {
		wsCall(ctx, t, c, taskwire.MethodEventsSubscribe, map[string]any{})
	}
	rebound := open(workerToken, false)
	wsCall(ctx, t, rebound, taskwire.MethodSystemRegister, map[string]any{"id": "w1"})

	// The producer is removed; the worker's token now acts as w2.
	write(entries["ops"], entries["ops2"], strings.Replace(entries["w1-token"], `"w1"`, `"w2"`, 1))
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"removed": removed, "rebound": rebound} {
		err := readUntilClosed(ctx, c)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || !strings.Contains(ce.Reason, "token") {
			t.Errorf("%s token's connection after the reload: %v, want close 1008 naming the token", name, err)
		}
	}
	// The kept tokens' connections still call and receive events.
	b.cl.Token = adminToken
	task := createTask(t, b, params{"text": "after the reload"})
	for _, c := range []*websocket.Conn{kept, keptFirst} {
		wsEventFor(ctx, t, c, task.ID)
		wsCall(ctx, t, c, taskwire.MethodSystemHealth, nil)
	}
}

// wsCall calls method on c, which must succeed, skipping notifications.
func wsCall(ctx context.Context, t *testing.T, c *websocket.Conn, method string, params any) json.RawMessage {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": method, "method": method, "params": params})
	if params == nil {
		req, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": method, "method": method})
	}
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		t.Fatalf("%s: write: %v", method, err)
	}
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: read: %v", method, err)
		}
		var resp struct {
			ID     string          `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *taskwire.Error `json:"error"`
		}
		if json.Unmarshal(msg, &resp) != nil || resp.ID != method {
			continue
		}
		if resp.Error != nil {
			t.Fatalf("%s: %v", method, resp.Error)
		}
		return resp.Result
	}
}

// wsEventFor reads c until an events.event notification about task id
// comes; a read that fails first fails the test.
func wsEventFor(ctx context.Context, t *testing.T, c *websocket.Conn, id string) {
	t.Helper()
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for an event of %s: %v", id, err)
		}
		var n struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(msg, &n) == nil && n.Method == taskwire.MethodEventsEvent && bytes.Contains(msg, []byte(id)) {
			return
		}
	}
}

// readUntilClosed reads c, dropping what comes, until it ends, and
// returns why.
func readUntilClosed(ctx context.Context, c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
}

// An event stream (GET /events) opened with a token ends when a reload
// removes that token; a stream whose token stays goes on.
func TestEventStreamEndsWhenTokenRevoked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	write := func(entries ...string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("["+strings.Join(entries, ",")+"]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ops := `{"name": "ops", "role": "admin", "token": "` + adminToken + `"}`
	shop := `{"name": "shop", "role": "producer", "token": "` + producerToken + `"}`
	write(ops, shop)
	tokens, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *Config) { c.Tokens = tokens })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	follow := func(token string) <-chan error {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /events: %v %v", resp, err)
		}
		ended := make(chan error, 1)
		go func() {
			defer resp.Body.Close()
			_, err := io.Copy(io.Discard, resp.Body)
			ended <- err
		}()
		return ended
	}
	kept, removed := follow(adminToken), follow(producerToken)

	write(ops)
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-removed:
	case <-ctx.Done():
		t.Fatal("the stream of a revoked token is still open")
	}
	select {
	case err := <-kept:
		t.Errorf("the stream of a kept token ended: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// A long poll over /rpc (task.claim with waitMs) whose token a reload
// removes ends with -32002 "token revoked", as the socket of a WebSocket
// does: it takes no task created afterwards.
func TestLongPollEndsWhenTokenRevoked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens.json")
	ops := `{"name": "ops", "role": "admin", "token": "` + adminToken + `"}`
	w1 := `{"name": "w1-token", "role": "worker", "workerId": "w1", "token": "` + workerToken + `"}`
	if err := os.WriteFile(path, []byte("["+ops+","+w1+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *Config) { c.Tokens, c.MaxWaitingClaims = tokens, 1 })
	ctx := t.Context()
	worker := as(b, workerToken)
	if err := worker.Call(ctx, taskwire.MethodSystemRegister, map[string]any{"workerId": "w1"}, nil); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan error, 1)
	go func() {
		var res taskwire.ClaimResult
		err := worker.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 20000}, &res)
		for e := (*taskwire.Error)(nil); errors.As(err, &e) && e.Code == taskwire.CodeRateLimited; {
			// A probe below held the one slot for a moment.
			err = worker.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 20000}, &res)
		}
		if err == nil {
			err = fmt.Errorf("claim answered %+v", res)
		}
		claimed <- err
	}()
	// The claim waits once a second one is refused as one too many.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		err := worker.Call(ctx, taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 1}, nil)
		var e *taskwire.Error
		if errors.As(err, &e) && e.Code == taskwire.CodeRateLimited {
			break
		}
		select {
		case err := <-claimed:
			t.Fatalf("the long poll answered before the reload: %v", err)
		default:
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the long poll is not waiting after 10 s (a second claim: %v)", err)
		}
	}

	if err := os.WriteFile(path, []byte("["+ops+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Reload(); err != nil {
		t.Fatal(err)
	}
	var task taskwire.Task
	if err := as(b, adminToken).Call(ctx, taskwire.MethodTaskCreate, map[string]any{"text": "after the reload"}, &task); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-claimed:
		var e *taskwire.Error
		if !errors.As(err, &e) || e.Code != taskwire.CodeNotAllowed || !strings.Contains(e.Message, "token revoked") {
			t.Fatalf("the long poll of a revoked token answered %v; want -32002 token revoked", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the long poll of a revoked token still waits")
	}
	var got taskwire.Task
	if err := as(b, adminToken).Call(ctx, taskwire.MethodTaskGet, map[string]any{"id": task.ID}, &got); err != nil || got.Status != taskwire.StatusPending {
		t.Fatalf("task after the revoked long poll: %+v, %v; want pending", got, err)
	}
}

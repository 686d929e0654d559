package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
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

package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/server"
	"github.com/taskwire/taskwire/internal/service"
)

// Every /rpc method answers over the WebSocket, with the same errors,
// batches and rate limits.
func TestCalls(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *server.Config) {
		c.RateLimits = map[string]service.Limit{taskwire.MethodTaskList: {N: 1, Per: time.Hour}}
	})
	cl := dial(t, b, nil)

	task := call[taskwire.Task](cl, taskwire.MethodTaskCreate, map[string]any{"text": "over ws", "priority": 70})
	if task.Status != taskwire.StatusPending || task.Priority != 70 {
		t.Errorf("created %+v", task)
	}
	got := call[taskwire.Task](cl, taskwire.MethodTaskGet, map[string]any{"id": task.ID})
	if got.ID != task.ID || got.Text != "over ws" {
		t.Errorf("task.get = %+v", got)
	}

	// The same errors as /rpc: unknown method, bad params, task not found.
	if e := cl.callErr("task.nope", nil); e.Code != taskwire.CodeMethodNotFound || e.Message != "Method not found: task.nope" {
		t.Errorf("unknown method: %v", e)
	}
	if e := cl.callErr(taskwire.MethodTaskCreate, map[string]any{"text": ""}); e.Code != taskwire.CodeInvalidParams {
		t.Errorf("empty text: %v", e)
	}
	if e := cl.callErr(taskwire.MethodTaskGet, map[string]any{"id": "t-missing"}); e.Message != "Task not found: t-missing" {
		t.Errorf("missing task: %v", e)
	}

	// Rate limits hold per principal across transports: one task.list per
	// hour, the second gets -32000.
	call[taskwire.ListResult](cl, taskwire.MethodTaskList, map[string]any{})
	if e := cl.callErr(taskwire.MethodTaskList, map[string]any{}); e.Code != taskwire.CodeRateLimited {
		t.Errorf("second task.list: %v, want -32000", e)
	}
}

// Batches answer as one message, notifications get none, and malformed
// messages get the errors JSON-RPC prescribes.
func TestBatchesAndBadMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)

	cl.send(`[{"jsonrpc":"2.0","id":"a","method":"task.create","params":{"text":"one"}},
		{"jsonrpc":"2.0","method":"task.create","params":{"text":"notified"}},
		{"jsonrpc":"2.0","id":"b","method":"system.health"}]`)
	var batch []message
	if err := json.Unmarshal(cl.response("batch").raw, &batch); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, m := range batch {
		ids = append(ids, string(m.ID))
		if m.Error != nil {
			t.Errorf("batch entry %s: %v", m.ID, m.Error)
		}
	}
	if diff := cmp.Diff([]string{`"a"`, `"b"`}, ids); diff != "" {
		t.Errorf("batch response ids (-want +got):\n%s", diff)
	}
	if n := call[taskwire.ListResult](cl, taskwire.MethodTaskList, map[string]any{}).TotalCount; n != 2 {
		t.Errorf("%d tasks, want 2 (the notification ran too)", n)
	}

	// A notification, and a batch of notifications only, get no message:
	// the next message is the response to the request that follows.
	cl.send(`{"jsonrpc":"2.0","method":"system.health"}`)
	cl.send(`[{"jsonrpc":"2.0","method":"system.health"},{"jsonrpc":"2.0","method":"task.nope"}]`)
	cl.send(`{"jsonrpc":"2.0","id":"after","method":"system.health"}`)
	if m := cl.next(cl.resps); string(m.ID) != `"after"` {
		t.Errorf("next message %s, want the response to id after", m.raw)
	}

	for _, tc := range []struct {
		msg  string
		code taskwire.Code
	}{
		{`{"jsonrpc":"2.0","id":1,"method":`, taskwire.CodeParseError},         // not JSON
		{`[]`, taskwire.CodeInvalidRequest},                                    // empty batch
		{`{"jsonrpc":"1.0","id":1,"method":"x"}`, taskwire.CodeInvalidRequest}, // wrong version
		{`"hello"`, taskwire.CodeInvalidRequest},                               // not an object
	} {
		cl.send(tc.msg)
		m := cl.next(cl.resps)
		if m.Error == nil || m.Error.Code != tc.code {
			t.Errorf("%s: got %s, want code %d", tc.msg, m.raw, tc.code)
		}
	}

	// A binary message is read as JSON too.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cl.c.Write(ctx, websocket.MessageBinary, []byte(`{"jsonrpc":"2.0","id":"bin","method":"system.health"}`)); err != nil {
		t.Fatal(err)
	}
	if m := cl.response(`"bin"`); m.Error != nil {
		t.Errorf("binary message: %v", m.Error)
	}
}

// A message over the size limit closes the connection with 1009.
func TestMessageTooBig(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(wsOpts(func(o *wsOpt) { o.MaxMessageBytes = 1024 })))
	cl := dial(t, b, nil)
	cl.send(`{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"` + strings.Repeat("x", 2000) + `"}}`)
	cl.wantClose(websocket.StatusMessageTooBig, "")
}

// A message over 1 MiB, read under the server's budget of request bodies,
// is answered whole, and the messages after it on the connection are
// answered too: its share of the budget came back with its response. With
// messages of up to 1 GiB, each large one takes 1 GiB of the budget (about
// 2 GiB), so the third would wait for a share never given back.
func TestLargeMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, wsOptions(wsOpts(func(o *wsOpt) { o.MaxMessageBytes = 1 << 30 })))
	cl := dial(t, b, nil)
	for i := range 3 {
		id := fmt.Sprint(i + 1)
		// 3 MiB of white space before the closing brace: the request is
		// whole only when the end of the message is read.
		cl.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"task.create","params":{"text":"large ` + id + `"}` +
			strings.Repeat(" ", 3<<20) + `}`)
		m := cl.response(id)
		if m.Error != nil {
			t.Fatalf("message %s of 3 MiB: %v", id, m.Error)
		}
		if task := decode[taskwire.Task](t, m); task.Text != "large "+id {
			t.Fatalf("message %s: created %q", id, task.Text)
		}
	}
}

// A text message that is not UTF-8 closes the connection with 1007 (RFC
// 6455 section 8.1) after the responses already queued; the same bytes as
// a binary message are answered -32602, as over HTTP.
func TestTextNotUTF8Closes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bad := []byte("{\"jsonrpc\":\"2.0\",\"id\":\"bad\",\"method\":\"task.create\",\"params\":{\"text\":\"\xff\"}}")
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cl := dial(t, b, nil)
	if err := cl.c.Write(ctx, websocket.MessageBinary, bad); err != nil {
		t.Fatal(err)
	}
	if m := cl.response(`"bad"`); m.Error == nil || m.Error.Code != taskwire.CodeInvalidParams {
		t.Errorf("binary message not UTF-8: %s, want -32602", m.raw)
	}
	if err := cl.c.Write(ctx, websocket.MessageText, bad); err != nil {
		t.Fatal(err)
	}
	cl.wantClose(websocket.StatusInvalidFramePayloadData, "text message is not valid UTF-8")
	if n := call[taskwire.ListResult](dial(t, b, nil), taskwire.MethodTaskList, map[string]any{}).TotalCount; n != 0 {
		t.Errorf("%d tasks after the refused messages, want none", n)
	}
}

// A long-poll claim does not hold up the other calls of its connection.
func TestLongPollDoesNotBlock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cl := dial(t, b, nil)
	call[taskwire.RegisterResult](cl, taskwire.MethodSystemRegister, map[string]any{"id": "w1"})
	claimID := cl.request(taskwire.MethodTaskClaim, map[string]any{"workerId": "w1", "waitMs": 30000})
	// Answered while the claim waits.
	task := call[taskwire.Task](cl, taskwire.MethodTaskCreate, map[string]any{"text": "for the waiting claim"})
	m := cl.response(claimID)
	var claim taskwire.ClaimResult
	if m.Error != nil || json.Unmarshal(m.Result, &claim) != nil || !claim.Claimed || claim.TaskID != task.ID {
		t.Errorf("claim: %s, want the task created meanwhile", m.raw)
	}
}

// events.* over POST /rpc: a clear -32601 for a well-formed call, -32602
// for bad params.
func TestEventsMethodsOverHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for _, method := range []string{taskwire.MethodEventsSubscribe, taskwire.MethodEventsUnsubscribe} {
		params := map[string]any{"subscription": "s1"}
		if method == taskwire.MethodEventsSubscribe {
			params = map[string]any{"types": []string{"task.created"}}
		}
		err := b.cl.Call(ctx, method, params, nil)
		e, ok := err.(*taskwire.Error)
		if !ok || e.Code != taskwire.CodeMethodNotFound || e.Message != "Method not found: "+method {
			t.Fatalf("%s over HTTP: %v, want -32601 Method not found: %s", method, err, method)
		}
		if data, _ := e.Data.(map[string]any); data["method"] != method || data["transport"] != "websocket" {
			t.Errorf("%s over HTTP: data %v, want the method and transport websocket", method, e.Data)
		}
	}
	err := b.cl.Call(ctx, taskwire.MethodEventsSubscribe, map[string]any{"types": []string{"task.nope"}}, nil)
	if e, ok := err.(*taskwire.Error); !ok || e.Code != taskwire.CodeInvalidParams {
		t.Errorf("bad types over HTTP: %v, want -32602", err)
	}
}

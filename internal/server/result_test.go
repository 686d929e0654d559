package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// Tests of GET /v1/tasks/{id}/result.

// completeRaw completes task id for worker with the JSON text result,
// sent as is.
func completeRaw(tb testing.TB, b *bundle, id, worker string, result []byte) {
	tb.Helper()
	var body bytes.Buffer
	fmt.Fprintf(&body, `{"jsonrpc":"2.0","id":1,"method":"task.complete","params":{"id":%q,"workerId":%q,"result":`, id, worker)
	body.Write(result)
	body.WriteString(`}}`)
	status, raw := post(tb, b, body.String())
	if status != 200 {
		tb.Fatalf("complete: HTTP %d %s", status, clipText(string(raw)))
	}
	if e := rawJSON(tb, raw)["error"]; e != nil {
		tb.Fatalf("complete: %s", e)
	}
}

func TestResultStreamLarge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := claimed(t, b, "w1")
	// A 20 MiB JSON array of numbers and strings, no two chunks alike.
	var result bytes.Buffer
	result.WriteByte('[')
	for i := 0; result.Len() < 20<<20; i++ {
		if i > 0 {
			result.WriteByte(',')
		}
		fmt.Fprintf(&result, `{"i":%d,"s":"row %d ✓"}`, i, i*7919)
	}
	result.WriteByte(']')
	completeRaw(t, b, task.ID, "w1", result.Bytes())

	resp, body := httpGet(t, b, "/v1/tasks/"+task.ID+"/result")
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, clipText(string(body)))
	}
	if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(result.Len()); got != want {
		t.Errorf("Content-Length %s, want %s", got, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(body, result.Bytes()) {
		t.Errorf("streamed %d bytes that differ from the %d stored", len(body), result.Len())
	}
	// task.get returns it whole too; task.list leaves it out.
	if got := getTask(t, b, task.ID); !bytes.Equal(got.Result, result.Bytes()) {
		t.Errorf("task.get result: %d bytes, want the %d stored", len(got.Result), result.Len())
	}
	row := listTasks(t, b, params{}).Tasks[0]
	if row.Result != nil || !row.ResultTruncated || row.ResultSize != int64(result.Len()) {
		t.Errorf("list row: result %d bytes, truncated %v, size %d", len(row.Result), row.ResultTruncated, row.ResultSize)
	}
}

func TestResultStreamTypes(t *testing.T) {
	t.Parallel()
	for _, result := range []string{`{"a":[1,2]}`, `[]`, `"text"`, `0`, `false`, `true`, `-2.5`} {
		t.Run(result, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task := claimed(t, b, "w1")
			completeRaw(t, b, task.ID, "w1", []byte(result))
			resp, body := httpGet(t, b, "/v1/tasks/"+task.ID+"/result")
			if resp.StatusCode != 200 || string(body) != result {
				t.Errorf("HTTP %d %q, want 200 %q", resp.StatusCode, body, result)
			}
		})
	}
}

func TestResultStreamNull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params params
	}{
		// The worker sent result null.
		{"null result", params{"result": nil}},
		// The worker sent no result at all.
		{"no result", params{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			task := claimed(t, b, "w1")
			p := params{"id": task.ID, "workerId": "w1"}
			for k, v := range tt.params {
				p[k] = v
			}
			call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, p)
			// The stored result is JSON null: the body is a JSON document.
			resp, body := httpGet(t, b, "/v1/tasks/"+task.ID+"/result")
			if resp.StatusCode != 200 || string(body) != "null" {
				t.Errorf("HTTP %d %q, want 200 \"null\"", resp.StatusCode, body)
			}
		})
	}
}

func TestResultStreamNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pending := createTask(t, b, params{"queue": "later"})
	running := claimed(t, b, "w1")
	rerun := createTask(t, b, params{"queue": "rerun"})
	claim(t, b, "w1", params{"queues": []string{"rerun"}})
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": rerun.ID, "result": "v1"})
	call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": rerun.ID, "updates": params{"status": "pending"}})
	tests := []struct {
		name string
		id   string
		code taskwire.Code
		// message is the exact message, "" to check code and data only.
		message string
		// data is the error's data beyond taskId: a conflict's status
		// and assignedTo (SPEC section 2).
		data map[string]any
	}{
		// No such task: the error of task.get.
		{"unknown task", "t-nope", taskwire.CodeInvalidParams, "Task not found: t-nope", nil},
		// Not final yet: no result to stream.
		{"pending task", pending.ID, taskwire.CodeConflict, "",
			map[string]any{"status": "pending", "assignedTo": nil}},
		{"running task", running.ID, taskwire.CodeConflict, "",
			map[string]any{"status": "in_progress", "assignedTo": "w1"}},
		// Sent back to the queue by an admin: its old result is gone.
		{"re-run task", rerun.ID, taskwire.CodeConflict, "",
			map[string]any{"status": "pending", "assignedTo": nil}},
	}
	// The cases run in sequence, right after the setup: parallel ones
	// would wait for a free slot behind the package's other tests, for
	// longer than w1 stays online without a heartbeat.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := httpGet(t, b, "/v1/tasks/"+tt.id+"/result")
			if resp.StatusCode != 404 {
				t.Errorf("HTTP %d, want 404", resp.StatusCode)
			}
			var got struct {
				JSONRPC string          `json:"jsonrpc"`
				ID      json.RawMessage `json:"id"`
				Error   *taskwire.Error `json:"error"`
			}
			if err := json.Unmarshal(body, &got); err != nil || got.Error == nil {
				t.Fatalf("body is not a JSON-RPC error: %s", clipText(string(body)))
			}
			if got.JSONRPC != "2.0" || string(got.ID) != "null" {
				t.Errorf("jsonrpc %q id %s, want 2.0 and null", got.JSONRPC, got.ID)
			}
			data := map[string]any{"taskId": tt.id}
			for k, v := range tt.data {
				data[k] = v
			}
			want := map[string]any{"code": float64(tt.code), "data": data}
			have := map[string]any{"code": float64(got.Error.Code), "data": got.Error.Data}
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if tt.message != "" && got.Error.Message != tt.message {
				t.Errorf("message %q, want %q", got.Error.Message, tt.message)
			}
		})
	}
}

func TestResultStreamFailed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := claimed(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w1", "error": "boom"})
	// A failed task has no result: either the JSON null that task.get
	// shows, or a 404 with a JSON-RPC error; never an empty JSON body.
	resp, body := httpGet(t, b, "/v1/tasks/"+task.ID+"/result")
	switch resp.StatusCode {
	case 200:
		if string(body) != "null" {
			t.Errorf("HTTP 200 %q, want null", body)
		}
	case 404:
		if e := rawJSON(t, body)["error"]; e == nil {
			t.Errorf("HTTP 404 without a JSON-RPC error: %q", body)
		}
	default:
		t.Errorf("HTTP %d %q", resp.StatusCode, body)
	}
}

// TestTaskResponsesCarryResult checks that the task which task.update and
// a repeated task.create answer with has its result as a task.list row
// has it: whole up to the list limit, left out and flagged above it.
func TestTaskResponsesCarryResult(t *testing.T) {
	t.Parallel()
	large := `"` + strings.Repeat("x", taskwire.ListResultLimit) + `"`
	for _, result := range []string{`{"a":[1,2]}`, large} {
		t.Run(strconv.Itoa(len(result)), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			register(t, b, "w1")
			task := createTask(t, b, params{"idempotencyKey": "k1"})
			claimOne(t, b, "w1")
			completeRaw(t, b, task.ID, "w1", []byte(result))
			for name, got := range map[string]*taskwire.Task{
				"task.update": call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate,
					params{"id": task.ID, "updates": params{"priority": 7}}),
				"repeated task.create": createTask(t, b, params{"idempotencyKey": "k1"}),
			} {
				truncated := len(result) > taskwire.ListResultLimit
				wantResult := json.RawMessage(result)
				if truncated {
					wantResult = nil
				}
				if !jsonSame(got.Result, wantResult) || got.ResultTruncated != truncated || got.ResultSize != int64(len(result)) {
					t.Errorf("%s: result %.40q, truncated %v, size %d; want %.40q, %v, %d", name,
						got.Result, got.ResultTruncated, got.ResultSize, wantResult, truncated, len(result))
				}
			}
		})
	}
}

// TestTaskGetLargeResult: task.get answers a large result (over 64 KiB,
// written around, not copied), compact or spaced, whole and the same over
// HTTP and over WebSocket, as one message.
func TestTaskGetLargeResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	for _, sep := range []string{",", ", "} {
		result := []byte("[" + strings.TrimSuffix(strings.Repeat(`"abcdefgh"`+sep, 20000), sep) + "]")
		task := createTask(t, b, params{})
		claimOne(t, b, "w1")
		completeRaw(t, b, task.ID, "w1", result)
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"task.get","params":{"id":%q}}`, task.ID)
		overHTTP, status, err := b.cl.Post(ctx, []byte(req))
		if err != nil || status != http.StatusOK {
			t.Fatalf("HTTP %d %v", status, err)
		}
		var got struct {
			Result taskwire.Task `json:"result"`
		}
		if err := json.Unmarshal(overHTTP, &got); err != nil {
			t.Fatalf("%v: %.300s", err, overHTTP)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, result); err != nil || !bytes.Equal(got.Result.Result, compact.Bytes()) {
			t.Errorf("separator %q: result of %d bytes answered, want the %d sent, compacted", sep, len(got.Result.Result), compact.Len())
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		_, overWS, err := c.Read(ctx)
		if err != nil || !bytes.Equal(overWS, overHTTP) {
			t.Errorf("separator %q: WebSocket answer (%v) %.200s\ndiffers from HTTP's %.200s", sep, err, overWS, overHTTP)
		}
	}
}

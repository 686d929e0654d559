package rpc

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// TestErrorMapping checks the error each kind of method error becomes.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		kind string
		want *rpcError
	}{
		// A missing task, wrapped: -32602 with the exact message.
		{"task", &rpcError{Code: -32602, Message: "Task not found: t-1", Data: map[string]any{"taskId": "t-1"}}},
		// A worker that is not registered.
		{"worker", &rpcError{Code: -32602, Message: "Worker not registered: w-1", Data: map[string]any{"workerId": "w-1"}}},
		// A conflict names the task's state.
		{"conflict", &rpcError{Code: -32003, Message: "Conflict: task is completed",
			Data: map[string]any{"taskId": "t-1", "status": "completed", "assignedTo": "w-2"}}},
		// A conflict on an unassigned task has assignedTo null.
		{"unassigned", &rpcError{Code: -32003, Message: "Conflict: task is not assigned",
			Data: map[string]any{"taskId": "t-1", "status": "pending", "assignedTo": nil}}},
		// A backend down says which and when to retry, and not why.
		{"unavailable", &rpcError{Code: -32001, Message: "Backend unavailable: postgres",
			Data: map[string]any{"backend": "postgres", "retryAfterMs": float64(2000)}}},
		// The bare sentinel is -32001 too, with a default delay.
		{"unavailable-bare", &rpcError{Code: -32001, Message: "Backend unavailable",
			Data: map[string]any{"backend": "", "retryAfterMs": float64(1000)}}},
		// Merged metadata over its limit.
		{"too-large", &rpcError{Code: -32004, Message: "Payload too large: updates.metadata is over 65536 bytes",
			Data: map[string]any{"field": "updates.metadata", "limit": float64(65536)}}},
		// A *taskwire.Error is used as is.
		{"rpc", &rpcError{Code: -32002, Message: "Not allowed", Data: map[string]any{"reason": "role"}}},
		// A *taskwire.Error whose data does not encode keeps its code and message.
		{"bad-data", &rpcError{Code: -32002, Message: "Not allowed"}},
		// Anything else is an internal error that tells nothing.
		{"internal", &rpcError{Code: -32603, Message: "Internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			_, e := b.call(t, `{"jsonrpc":"2.0","method":"fail","params":{"kind":"`+tt.kind+`"},"id":1}`)
			if diff := cmp.Diff(tt.want, e); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInternalErrorLogged checks that an unknown error is logged with its
// method and cause, and that its text never reaches the client.
func TestInternalErrorLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	_, out := b.post(t, `{"jsonrpc":"2.0","method":"fail","params":{"kind":"internal"},"id":1}`)
	if strings.Contains(string(out), "SELECT") || strings.Contains(string(out), "pq:") {
		t.Errorf("response leaks the cause: %s", out)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "method=fail") || !strings.Contains(logs, "SELECT * FROM tasks") {
		t.Errorf("log %q, want the method and the cause", logs)
	}
	// A result that does not encode is an internal error too.
	_, e := b.call(t, `{"jsonrpc":"2.0","method":"inf","id":1}`)
	if diff := cmp.Diff(&rpcError{Code: taskwire.CodeInternalError, Message: "Internal error"}, e); diff != "" {
		t.Errorf("unencodable result (-want +got):\n%s", diff)
	}
	if logs := b.logs.String(); !strings.Contains(logs, "method=inf") {
		t.Errorf("log %q, want the method whose result did not encode", logs)
	}
}

// TestCallerGoneNotLogged checks that a method ended by its caller
// leaving (its context canceled, e.g. a long poll whose worker stopped)
// is not logged as an error: nothing went wrong on the server.
func TestCallerGoneNotLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.post(t, `{"jsonrpc":"2.0","method":"fail","params":{"kind":"canceled"},"id":1}`)
	if logs := b.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("log %q, want no error for a caller that left", logs)
	}
}

// TestPanic checks that a panicking method is an internal error, logged
// with its stack, and that the server goes on serving, in a batch too.
func TestPanic(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	_, e := b.call(t, `{"jsonrpc":"2.0","method":"panic","id":1}`)
	if diff := cmp.Diff(&rpcError{Code: taskwire.CodeInternalError, Message: "Internal error"}, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, "panic=boom") || !strings.Contains(logs, "runtime/debug.Stack") {
		t.Errorf("log %q, want the panic and its stack", logs)
	}
	_, out := b.post(t, `[{"jsonrpc":"2.0","method":"panic","id":1},{"jsonrpc":"2.0","method":"none","id":2}]`)
	want := `[{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":1},{"jsonrpc":"2.0","result":"ok","id":2}]`
	if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, out)); diff != "" {
		t.Errorf("batch (-want +got):\n%s", diff)
	}
	if result, e := b.call(t, `{"jsonrpc":"2.0","method":"none","id":3}`); e != nil || string(result) != `"ok"` {
		t.Errorf("after a panic: result %s, error %v", result, e)
	}
}

// TestUnavailableLogged checks that a backend that cannot serve is logged
// with the method and the cause, which the client's -32001 leaves out: an
// operator must be able to see why calls fail (a full disk, a database
// down).
func TestUnavailableLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	_, out := b.post(t, `{"jsonrpc":"2.0","method":"fail","params":{"kind":"unavailable"},"id":1}`)
	if strings.Contains(string(out), "SELECT") {
		t.Errorf("response leaks the cause: %s", out)
	}
	logs := b.logs.String()
	for _, want := range []string{"level=WARN", "method=fail", "postgres unavailable", "SELECT * FROM tasks"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log %q, want %q in it", logs, want)
		}
	}
	// An outage fails every call: the log says so once in a while, not
	// once per call.
	for range 20 {
		b.post(t, `{"jsonrpc":"2.0","method":"fail","params":{"kind":"unavailable"},"id":1}`)
	}
	if n := strings.Count(b.logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for 21 failed calls in a row, want 1", n)
	}
}

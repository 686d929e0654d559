package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// JSON-RPC 2.0 over HTTP end to end: batches, notifications, and the
// answers to what is not a valid request.

func TestBatchOfThousand(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	seed := createTask(t, b, nil)

	// Five kinds of call, 200 each, every one with its own id.
	kinds := []struct {
		call string
		// check checks one response of the kind.
		check func(t *testing.T, r rpctest.Response)
	}{
		{`{"jsonrpc":"2.0","id":%d,"method":"task.create","params":{"text":"batch %d","queue":"batch"}}`,
			func(t *testing.T, r rpctest.Response) {
				var task taskwire.Task
				if r.Error != nil || json.Unmarshal(r.Result, &task) != nil || task.Queue != "batch" {
					t.Errorf("create: %s %v", r.Result, r.Error)
				}
			}},
		{`{"jsonrpc":"2.0","id":%d,"method":"task.get","params":{"id":"` + seed.ID + `"}}`,
			func(t *testing.T, r rpctest.Response) {
				var task taskwire.Task
				if r.Error != nil || json.Unmarshal(r.Result, &task) != nil || task.ID != seed.ID {
					t.Errorf("get: %s %v", r.Result, r.Error)
				}
			}},
		{`{"jsonrpc":"2.0","id":%d,"method":"task.get","params":{"id":"t-missing-%d"}}`,
			func(t *testing.T, r rpctest.Response) {
				if r.Error == nil || r.Error.Code != taskwire.CodeInvalidParams || !strings.HasPrefix(r.Error.Message, "Task not found: t-missing-") {
					t.Errorf("get missing: %s %v", r.Result, r.Error)
				}
			}},
		{`{"jsonrpc":"2.0","id":%d,"method":"no.such.method%d"}`,
			func(t *testing.T, r rpctest.Response) {
				if r.Error == nil || r.Error.Code != taskwire.CodeMethodNotFound {
					t.Errorf("unknown method: %s %v", r.Result, r.Error)
				}
			}},
		{`{"jsonrpc":"2.0","id":%d,"method":"system.health"}`,
			func(t *testing.T, r rpctest.Response) {
				var h taskwire.HealthResult
				if r.Error != nil || json.Unmarshal(r.Result, &h) != nil || h.Status != "ok" {
					t.Errorf("health: %s %v", r.Result, r.Error)
				}
			}},
	}
	var parts []string
	for i := 0; i < 1000; i++ {
		k := kinds[i%len(kinds)].call
		if strings.Count(k, "%d") == 2 {
			parts = append(parts, fmt.Sprintf(k, i, i))
		} else {
			parts = append(parts, fmt.Sprintf(k, i))
		}
	}
	status, raw := post(t, b, "["+strings.Join(parts, ",")+"]")
	if status != 200 {
		t.Fatalf("HTTP %d", status)
	}
	var resps []rpctest.Response
	if err := json.Unmarshal(raw, &resps); err != nil {
		t.Fatalf("batch answer is not an array: %v: %s", err, clipText(string(raw)))
	}
	if len(resps) != 1000 {
		t.Fatalf("%d responses to a batch of 1000", len(resps))
	}
	seen := make([]bool, 1000)
	for _, r := range resps {
		var id int
		if err := json.Unmarshal(r.ID, &id); err != nil || id < 0 || id >= 1000 || seen[id] {
			t.Fatalf("response id %s: unknown or repeated", r.ID)
		}
		seen[id] = true
		kinds[id%len(kinds)].check(t, r)
	}
	if n := listTasks(t, b, params{"queue": "batch"}).TotalCount; n != 200 {
		t.Errorf("%d tasks created by the batch, want 200", n)
	}
}

func TestNotifications(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		created int // tasks the body creates
		// want is the ids of the responses, nil for HTTP 204 and no body.
		want []string
	}{
		// A notification runs and gets no response.
		{"one notification", `{"jsonrpc":"2.0","method":"task.create","params":{"text":"n"}}`, 1, nil},
		// Even when it fails.
		{"failing notification", `{"jsonrpc":"2.0","method":"task.create","params":{"text":""}}`, 0, nil},
		{"notification of an unknown method", `{"jsonrpc":"2.0","method":"nope"}`, 0, nil},
		// A batch of notifications only: HTTP 204.
		{"batch of notifications", `[{"jsonrpc":"2.0","method":"task.create","params":{"text":"a"}},
			{"jsonrpc":"2.0","method":"task.create","params":{"text":"b"}},
			{"jsonrpc":"2.0","method":"nope"}]`, 2, nil},
		// A mixed batch answers the requests only.
		{"mixed batch", `[{"jsonrpc":"2.0","method":"task.create","params":{"text":"a"}},
			{"jsonrpc":"2.0","id":"r1","method":"task.create","params":{"text":"b"}},
			{"jsonrpc":"2.0","method":"task.create","params":{"text":"c"}},
			{"jsonrpc":"2.0","id":"r2","method":"nope"}]`, 3, []string{`"r1"`, `"r2"`}},
		// id null is a request, not a notification.
		{"id null", `{"jsonrpc":"2.0","id":null,"method":"task.create","params":{"text":"x"}}`, 1, []string{"null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			status, raw := post(t, b, tt.body)
			if tt.want == nil {
				if status != 204 || len(raw) != 0 {
					t.Errorf("HTTP %d %q, want 204 and no body", status, raw)
				}
			} else {
				if status != 200 {
					t.Errorf("HTTP %d, want 200", status)
				}
				var got []string
				if raw[0] == '[' {
					var resps []rpctest.Response
					if err := json.Unmarshal(raw, &resps); err != nil {
						t.Fatal(err)
					}
					for _, r := range resps {
						got = append(got, string(r.ID))
					}
				} else {
					got = append(got, string(rawJSON(t, raw)["id"]))
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("response ids (-want +got):\n%s", diff)
				}
			}
			if n := taskCount(t, b); n != tt.created {
				t.Errorf("%d tasks, want %d", n, tt.created)
			}
		})
	}
}

// rawJSON splits a JSON object into its raw members.
func rawJSON(tb testing.TB, raw []byte) map[string]json.RawMessage {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("not a JSON object: %s", clipText(string(raw)))
	}
	return m
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		// want: the code of the single error answer and its id.
		code taskwire.Code
		id   string
	}{
		{"empty batch", `[]`, taskwire.CodeInvalidRequest, "null"},
		{"empty batch with spaces", " [ \n ] ", taskwire.CodeInvalidRequest, "null"},
		{"invalid JSON", `{"jsonrpc":"2.0","id":1,"method":`, taskwire.CodeParseError, "null"},
		{"invalid JSON in a batch", `[{"jsonrpc":"2.0","id":1,"method":"system.health"},`, taskwire.CodeParseError, "null"},
		{"not JSON at all", `hello`, taskwire.CodeParseError, "null"},
		{"empty body", ``, taskwire.CodeParseError, "null"},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"system.health"} x`, taskwire.CodeParseError, "null"},
		{"a number", `1`, taskwire.CodeInvalidRequest, "null"},
		{"a string", `"task.get"`, taskwire.CodeInvalidRequest, "null"},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"system.health"}`, taskwire.CodeInvalidRequest, "1"},
		{"version missing", `{"id":2,"method":"system.health"}`, taskwire.CodeInvalidRequest, "2"},
		{"method not a string", `{"jsonrpc":"2.0","id":3,"method":1}`, taskwire.CodeInvalidRequest, "3"},
		{"method missing", `{"jsonrpc":"2.0","id":"x"}`, taskwire.CodeInvalidRequest, `"x"`},
		{"params a string", `{"jsonrpc":"2.0","id":4,"method":"system.health","params":"p"}`, taskwire.CodeInvalidRequest, "4"},
		{"params null", `{"jsonrpc":"2.0","id":5,"method":"system.health","params":null}`, taskwire.CodeInvalidRequest, "5"},
		{"id an object", `{"jsonrpc":"2.0","id":{},"method":"system.health"}`, taskwire.CodeInvalidRequest, "null"},
		{"id a bool", `{"jsonrpc":"2.0","id":true,"method":"system.health"}`, taskwire.CodeInvalidRequest, "null"},
		// Positional params are not what the methods take.
		{"params an array", `{"jsonrpc":"2.0","id":6,"method":"task.create","params":["x"]}`, taskwire.CodeInvalidParams, "6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			status, raw := post(t, b, tt.body)
			if status != 200 {
				t.Errorf("HTTP %d, want 200", status)
			}
			m := rawJSON(t, raw) // one object, not an array
			var e taskwire.Error
			if err := json.Unmarshal(m["error"], &e); err != nil {
				t.Fatalf("no error object: %s", raw)
			}
			if e.Code != tt.code || e.Message == "" {
				t.Errorf("error %d %q, want %d", e.Code, e.Message, tt.code)
			}
			if string(m["id"]) != tt.id || string(m["jsonrpc"]) != `"2.0"` {
				t.Errorf("jsonrpc %s id %s, want \"2.0\" and %s", m["jsonrpc"], m["id"], tt.id)
			}
			if _, ok := m["result"]; ok {
				t.Errorf("an error response with a result member: %s", raw)
			}
			if n := taskCount(t, b); n != 0 {
				t.Errorf("%d tasks created by an invalid request", n)
			}
		})
	}
}

func TestBatchOfInvalidElements(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, raw := post(t, b, `[1, "x", {"jsonrpc":"2.0","id":7,"method":"system.health"}, {"foo":"bar"}]`)
	if status != 200 {
		t.Errorf("HTTP %d", status)
	}
	var resps []rpctest.Response
	if err := json.Unmarshal(raw, &resps); err != nil {
		t.Fatalf("want an array: %s", raw)
	}
	var invalid, ok int
	for _, r := range resps {
		switch {
		case r.Error != nil && r.Error.Code == taskwire.CodeInvalidRequest && string(r.ID) == "null":
			invalid++
		case r.Error == nil && string(r.ID) == "7":
			ok++
		default:
			t.Errorf("unexpected response id %s error %v", r.ID, r.Error)
		}
	}
	if invalid != 3 || ok != 1 {
		t.Errorf("%d invalid and %d ok responses, want 3 and 1", invalid, ok)
	}
}

func TestIDsEchoed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, id := range []string{`"abc"`, `"req-004"`, `0`, `-5`, `12345678901234567890`, `1.5`, `"✓ ü"`} {
		status, raw := post(t, b, `{"jsonrpc":"2.0","id":`+id+`,"method":"system.health"}`)
		if got := string(rawJSON(t, raw)["id"]); status != 200 || got != id {
			t.Errorf("id %s came back as %s (HTTP %d)", id, got, status)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	over := `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"x","metadata":{"k":"` +
		strings.Repeat("x", 5000) + `"}}}`
	status, raw := post(t, b, over)
	if status != 413 {
		t.Errorf("body of %d bytes over a 4096 limit: HTTP %d, want 413", len(over), status)
	}
	if len(raw) > 0 {
		var resp rpctest.Response
		if err := json.Unmarshal(raw, &resp); err != nil || resp.Error == nil {
			t.Errorf("413 body is not a JSON-RPC error: %s", clipText(string(raw)))
		}
	}
	// Under the limit all is well, and the big one created nothing.
	createTask(t, b, nil)
	if n := taskCount(t, b); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
}

// TestRPCOnlyPost: GET /rpc is a -32600 with id null, HTTP 200 as every
// JSON-RPC response (SPEC 1).
func TestRPCOnlyPost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp, raw := httpGet(t, b, "/rpc")
	var out rpctest.Response
	if err := json.Unmarshal(raw, &out); err != nil || out.Error == nil || out.Error.Code != taskwire.CodeInvalidRequest || string(out.ID) != "null" {
		t.Errorf("GET /rpc: %s, want a -32600 with id null", raw)
	}
	if resp.StatusCode != 200 {
		t.Errorf("GET /rpc: HTTP %d, want 200", resp.StatusCode)
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// Helpers shared by the HTTP-level tests of every method: typed calls,
// error assertions that compare code, message and data, and a fake clock.

// t0 is the start of every fake clock.
var t0 = time.Date(2025, 1, 19, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// withFakeClock starts a server on a fake clock and returns both.
func withFakeClock(tb testing.TB, opts ...option) (*bundle, *fakeClock) {
	tb.Helper()
	clk := newFakeClock()
	return setup(tb, append(opts, withClock(clk.Now))...), clk
}

// params is the params object of a call.
type params = map[string]any

// call calls method and returns its result decoded into an R; any error
// fails the test.
func call[R any](tb testing.TB, b *bundle, method string, p any) R {
	tb.Helper()
	var out R
	if err := b.cl.Call(context.Background(), method, p, &out); err != nil {
		tb.Fatalf("%s %s: %v", method, jsonText(p), err)
	}
	return out
}

// callErr calls method, which must fail, and returns its JSON-RPC error.
func callErr(tb testing.TB, b *bundle, method string, p any) *taskwire.Error {
	tb.Helper()
	var raw json.RawMessage
	err := b.cl.Call(context.Background(), method, p, &raw)
	if err == nil {
		tb.Fatalf("%s %s: want an error, got result %s", method, jsonText(p), clipText(string(raw)))
	}
	var rpcErr *taskwire.Error
	if !errors.As(err, &rpcErr) {
		tb.Fatalf("%s: want a JSON-RPC error, got %v", method, err)
	}
	return rpcErr
}

// wantError checks that method fails with exactly want: code, message and
// data.
func wantError(tb testing.TB, b *bundle, method string, p any, want *taskwire.Error) {
	tb.Helper()
	got := callErr(tb, b, method, p)
	if diff := cmp.Diff(jsonValue(tb, want), jsonValue(tb, got)); diff != "" {
		tb.Errorf("%s %s: error mismatch (-want +got):\n%s", method, clipText(jsonText(p)), diff)
	}
}

// wantInvalid checks that method fails with -32602 whose validation data
// names field.
func wantInvalid(tb testing.TB, b *bundle, method string, p any, field string) {
	tb.Helper()
	checkInvalid(tb, callErr(tb, b, method, p), field)
}

// checkInvalid checks that e is a -32602 "Invalid params" whose
// validation names field.
func checkInvalid(tb testing.TB, e *taskwire.Error, field string) {
	tb.Helper()
	if e.Code != taskwire.CodeInvalidParams {
		tb.Fatalf("code = %d (%s), want %d", e.Code, e.Message, taskwire.CodeInvalidParams)
	}
	data, _ := e.Data.(map[string]any)
	v, _ := data["validation"].(string)
	if v == "" || !strings.Contains(v, field) {
		tb.Errorf("error %q data %v: want a validation naming %q", e.Message, e.Data, field)
	}
	if !strings.HasPrefix(e.Message, "Invalid params") {
		tb.Errorf("message = %q, want it to start with Invalid params", e.Message)
	}
}

// notFound is the exact error for an unknown task id.
func notFound(id string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeInvalidParams, Message: "Task not found: " + id,
		Data: map[string]any{"taskId": id}}
}

// notRegistered is the exact error for an unknown worker id.
func notRegistered(id string) *taskwire.Error {
	return &taskwire.Error{Code: taskwire.CodeInvalidParams, Message: "Worker not registered: " + id,
		Data: map[string]any{"workerId": id}}
}

// wantConflict checks that method fails with -32003 and data
// {taskId, status, assignedTo} (assignedTo "" stands for null).
func wantConflict(tb testing.TB, b *bundle, method string, p any, taskID string, status taskwire.Status, assignedTo string) {
	tb.Helper()
	got := callErr(tb, b, method, p)
	var to any
	if assignedTo != "" {
		to = assignedTo
	}
	want := map[string]any{"code": float64(taskwire.CodeConflict),
		"data": map[string]any{"taskId": taskID, "status": string(status), "assignedTo": to}}
	g := jsonValue(tb, got).(map[string]any)
	if m, _ := g["message"].(string); m == "" {
		tb.Errorf("%s: conflict error without a message", method)
	}
	delete(g, "message")
	if diff := cmp.Diff(want, g); diff != "" {
		tb.Errorf("%s %s: conflict error mismatch (-want +got):\n%s", method, clipText(jsonText(p)), diff)
	}
}

// createTask creates a task from p (text "task" unless p sets it).
func createTask(tb testing.TB, b *bundle, p params) *taskwire.Task {
	tb.Helper()
	q := params{"text": "task"}
	for k, v := range p {
		q[k] = v
	}
	return call[*taskwire.Task](tb, b, taskwire.MethodTaskCreate, q)
}

// getTask returns task id.
func getTask(tb testing.TB, b *bundle, id string) *taskwire.Task {
	tb.Helper()
	return call[*taskwire.Task](tb, b, taskwire.MethodTaskGet, params{"id": id})
}

// register registers worker id with queues.
func register(tb testing.TB, b *bundle, id string, queues ...string) {
	tb.Helper()
	p := params{"id": id}
	if len(queues) > 0 {
		p["queues"] = queues
	}
	r := call[taskwire.RegisterResult](tb, b, taskwire.MethodSystemRegister, p)
	if !r.Registered {
		tb.Fatalf("register %s: registered false", id)
	}
}

// claim claims for worker with the extra params p.
func claim(tb testing.TB, b *bundle, worker string, p params) taskwire.ClaimResult {
	tb.Helper()
	q := params{"workerId": worker}
	for k, v := range p {
		q[k] = v
	}
	return call[taskwire.ClaimResult](tb, b, taskwire.MethodTaskClaim, q)
}

// claimOne claims one task for worker, which must get one.
func claimOne(tb testing.TB, b *bundle, worker string) *taskwire.Task {
	tb.Helper()
	r := claim(tb, b, worker, nil)
	if !r.Claimed || r.Task == nil {
		tb.Fatalf("claim for %s: nothing claimed", worker)
	}
	return r.Task
}

// listTasks lists with p.
func listTasks(tb testing.TB, b *bundle, p params) taskwire.ListResult {
	tb.Helper()
	return call[taskwire.ListResult](tb, b, taskwire.MethodTaskList, p)
}

// taskCount is the number of tasks of the server.
func taskCount(tb testing.TB, b *bundle) int {
	tb.Helper()
	return listTasks(tb, b, params{"limit": 1}).TotalCount
}

// wantUnchanged checks that task before is still stored as it was.
func wantUnchanged(tb testing.TB, b *bundle, before *taskwire.Task) {
	tb.Helper()
	if diff := cmp.Diff(before, getTask(tb, b, before.ID), jsonEq); diff != "" {
		tb.Errorf("task %s changed (-before +after):\n%s", before.ID, diff)
	}
}

// jsonEq compares JSON values by meaning: key order and spacing aside,
// an absent value equal to null.
var jsonEq = cmp.Comparer(func(a, b json.RawMessage) bool {
	return jsonSame(a, b)
})

func jsonSame(a, b []byte) bool {
	norm := func(m []byte) any {
		if len(bytes.TrimSpace(m)) == 0 {
			return nil
		}
		var v any
		if err := json.Unmarshal(m, &v); err != nil {
			return "undecodable: " + string(m)
		}
		return v
	}
	return cmp.Equal(norm(a), norm(b))
}

// jsonValue returns v as encoding/json decodes its encoding into any.
func jsonValue(tb testing.TB, v any) any {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// rawObject decodes the JSON object raw, or fails the test.
func rawObject(tb testing.TB, raw []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("not a JSON object: %s: %v", clipText(string(raw)), err)
	}
	return m
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "<unencodable>"
	}
	return string(b)
}

func clipText(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// post sends body to /rpc and returns the HTTP status and answer.
func post(tb testing.TB, b *bundle, body string) (int, []byte) {
	tb.Helper()
	raw, status, err := b.cl.Post(context.Background(), []byte(body))
	if err != nil {
		tb.Fatal(err)
	}
	return status, raw
}

// httpGet fetches path from the server.
func httpGet(tb testing.TB, b *bundle, path string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return do(tb, req)
}

// do sends req and returns the response with its whole body.
func do(tb testing.TB, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// wantCodeData checks that method fails with code and exactly data, and
// some message.
func wantCodeData(tb testing.TB, b *bundle, method string, p any, code taskwire.Code, data any) {
	tb.Helper()
	got := callErr(tb, b, method, p)
	if got.Message == "" {
		tb.Errorf("%s: error without a message", method)
	}
	want := map[string]any{"code": code, "data": data}
	have := map[string]any{"code": got.Code, "data": got.Data}
	if diff := cmp.Diff(jsonValue(tb, want), jsonValue(tb, have)); diff != "" {
		tb.Errorf("%s %s: error mismatch (-want +got):\n%s", method, clipText(jsonText(p)), diff)
	}
}

package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// Tests of system.health, system.metrics, rpc.discover, unknown methods,
// and the plain HTTP endpoints /healthz, /readyz and /metrics.

func TestHealth(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	clk.Advance(1234 * time.Millisecond)
	raw := call[json.RawMessage](t, b, taskwire.MethodSystemHealth, params{})
	want := map[string]any{"status": "ok", "backends": map[string]any{"sqlite": "ok"},
		"version": "test", "uptimeMs": float64(1234)}
	if diff := cmp.Diff(want, rawObject(t, raw)); diff != "" {
		t.Errorf("system.health (-want +got):\n%s", diff)
	}
	// Without params at all, as JSON-RPC allows.
	status, body := post(t, b, `{"jsonrpc":"2.0","id":"h","method":"system.health"}`)
	if resp := rawObject(t, body); status != 200 || resp["error"] != nil || resp["id"] != "h" {
		t.Errorf("system.health without params: HTTP %d %s", status, body)
	}
	wantInvalid(t, b, taskwire.MethodSystemHealth, params{"verbose": true}, "verbose")
}

func TestMetricsMethod(t *testing.T) {
	t.Parallel()
	b, clk := withFakeClock(t)
	register(t, b, "w1")
	register(t, b, "w2")
	createTask(t, b, nil) // the oldest pending task, 10 s old at the end
	clk.Advance(4 * time.Second)
	for i := 0; i < 3; i++ {
		createTask(t, b, nil)
	}
	createTask(t, b, params{"queue": "mail"})
	createTask(t, b, params{"queue": "mail"})
	claim(t, b, "w1", params{"queues": []string{"mail"}, "maxTasks": 2})
	mail := listTasks(t, b, params{"queue": "mail"}).Tasks
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": mail[0].ID, "result": 1})
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": mail[1].ID, "error": "x"})
	clk.Advance(6 * time.Second)

	got := call[taskwire.MetricsResult](t, b, taskwire.MethodSystemMetrics, params{})
	byQueue := map[string]taskwire.QueueCounts{}
	for _, q := range got.Queues {
		byQueue[q.Queue] = q
	}
	wantQueues := map[string]taskwire.QueueCounts{
		"default": {Queue: "default", ByStatus: map[taskwire.Status]int{"pending": 4}, OldestAgeMs: 10_000},
		"mail":    {Queue: "mail", ByStatus: map[taskwire.Status]int{"completed": 1, "failed": 1}},
	}
	zeroless := cmp.Transformer("zeroless", func(m map[taskwire.Status]int) map[taskwire.Status]int {
		out := map[taskwire.Status]int{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	})
	if diff := cmp.Diff(wantQueues, byQueue, zeroless); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}
	wantStatus := map[taskwire.Status]int{"pending": 4, "in_progress": 0, "completed": 1, "failed": 1}
	if diff := cmp.Diff(wantStatus, got.ByStatus); diff != "" {
		t.Errorf("byStatus (-want +got):\n%s", diff)
	}
	if got.OldestPendingAgeMs != 10_000 {
		t.Errorf("oldestPendingAgeMs = %d, want 10000", got.OldestPendingAgeMs)
	}
	if got.Workers[taskwire.WorkerOnline] != 2 {
		t.Errorf("workers = %v, want 2 online", got.Workers)
	}
	// 2 claims and 2 completions within the last minute.
	if got.ClaimRatePerSec <= 0 || got.CompletionRatePerSec <= 0 {
		t.Errorf("claimRatePerSec %v completionRatePerSec %v, want > 0", got.ClaimRatePerSec, got.CompletionRatePerSec)
	}
}

// TestMetricsCountRetriedCompletionOnce: a completion retried after it
// succeeded changes nothing, so system.metrics and /metrics count it once,
// and a retry in a batch beside the first call does too.
func TestMetricsCountRetriedCompletionOnce(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t)
	register(t, b, "w1")
	createTask(t, b, nil)
	createTask(t, b, nil)
	first := claimOne(t, b, "w1")
	p := params{"id": first.ID, "workerId": "w1", "attempt": first.Attempt, "result": "ok"}
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, p)
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, p) // the response was lost
	second := claimOne(t, b, "w1")
	req := fmt.Sprintf(`[{"jsonrpc":"2.0","id":1,"method":"task.complete","params":{"id":%q,"workerId":"w1","error":"x"}},`+
		`{"jsonrpc":"2.0","id":2,"method":"task.complete","params":{"id":%q,"workerId":"w1","error":"x"}}]`, second.ID, second.ID)
	if status, body := post(t, b, req); status != 200 || strings.Contains(string(body), `"error":{`) {
		t.Fatalf("batch of a completion and its retry: HTTP %d %s", status, body)
	}

	got := call[taskwire.MetricsResult](t, b, taskwire.MethodSystemMetrics, params{})
	if got.ClaimRatePerSec != 2.0/60 || got.CompletionRatePerSec != 2.0/60 {
		t.Errorf("claimRatePerSec %v completionRatePerSec %v, want 2 claims and 2 completions a minute: %v each",
			got.ClaimRatePerSec, got.CompletionRatePerSec, 2.0/60)
	}
	_, body := httpGet(t, b, "/metrics")
	series := parseMetrics(t, body)
	for name, want := range map[string]float64{"taskwire_tasks_claimed_total": 2, "taskwire_tasks_completed_total": 2} {
		if series[name] != want {
			t.Errorf("%s = %v, want %v", name, series[name], want)
		}
	}
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	type document struct {
		OpenRPC string `json:"openrpc"`
		Info    struct {
			Version string `json:"version"`
		} `json:"info"`
		Methods []struct {
			Name   string `json:"name"`
			Params []struct {
				Name     string          `json:"name"`
				Required bool            `json:"required"`
				Schema   json.RawMessage `json:"schema"`
			} `json:"params"`
			Result struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"result"`
		} `json:"methods"`
	}
	doc := call[document](t, b, taskwire.MethodDiscover, params{})
	if !strings.HasPrefix(doc.OpenRPC, "1.") {
		t.Errorf("openrpc = %q, want 1.x", doc.OpenRPC)
	}
	var names []string
	paramsOf := map[string]map[string]bool{} // method -> param -> required
	for _, m := range doc.Methods {
		if m.Name == taskwire.MethodDiscover {
			continue // OpenRPC implies it
		}
		names = append(names, m.Name)
		paramsOf[m.Name] = map[string]bool{}
		for _, p := range m.Params {
			paramsOf[m.Name][p.Name] = p.Required
			if len(p.Schema) == 0 || string(p.Schema) == "null" {
				t.Errorf("%s param %s has no schema", m.Name, p.Name)
			}
		}
		if len(m.Result.Schema) == 0 || string(m.Result.Schema) == "null" {
			t.Errorf("%s has no result schema", m.Name)
		}
	}
	want := []string{
		"events.subscribe", "events.unsubscribe",
		"system.health", "system.heartbeat", "system.metrics", "system.register", "system.unregister", "system.workers",
		"task.assign", "task.claim", "task.complete", "task.create", "task.delete", "task.get", "task.list",
		"task.unassign", "task.update",
	}
	slices.Sort(names)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("methods (-want +got):\n%s", diff)
	}
	// The params are those the methods take, from the same types.
	for _, tc := range []struct {
		method string
		want   map[string]bool
	}{
		{"task.create", map[string]bool{"text": true, "priority": false, "metadata": false, "queue": false,
			"runAt": false, "delayMs": false, "maxAttempts": false, "leaseMs": false, "idempotencyKey": false}},
		{"task.complete", map[string]bool{"id": false, "taskId": false, "workerId": false, "result": false,
			"error": false, "attempt": false}},
		{"task.claim", map[string]bool{"workerId": true, "maxTasks": false, "queues": false, "waitMs": false}},
		{"system.workers", map[string]bool{}},
		{"events.subscribe", map[string]bool{"types": false, "taskId": false, "afterEventId": false}},
		{"events.unsubscribe", map[string]bool{"subscription": true}},
	} {
		if diff := cmp.Diff(tc.want, paramsOf[tc.method]); diff != "" {
			t.Errorf("%s params (-want +got):\n%s", tc.method, diff)
		}
	}
}

func TestMethodNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, m := range []string{"task.nope", "Task.Create", "", "rpc.other", strings.Repeat("x", 300)} {
		wantError(t, b, m, params{}, &taskwire.Error{Code: taskwire.CodeMethodNotFound,
			Message: "Method not found: " + m, Data: map[string]any{"method": m}})
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, body := httpGet(t, b, path)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: HTTP %d %s", path, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		rawObject(t, body)
	}
}

func TestPrometheusMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	for i := 0; i < 3; i++ {
		createTask(t, b, nil)
	}
	createTask(t, b, params{"queue": "mail"})
	task := claimOne(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "result": 1})
	claimOne(t, b, "w1")
	callErr(t, b, taskwire.MethodTaskGet, params{"id": "t-none"})
	callErr(t, b, "made.up", params{})

	resp, body := httpGet(t, b, "/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the Prometheus text format", ct)
	}
	got := parseMetrics(t, body)
	want := map[string]float64{
		`taskwire_tasks{queue="default",status="pending"}`:                                1,
		`taskwire_tasks{queue="default",status="in_progress"}`:                            1,
		`taskwire_tasks{queue="default",status="completed"}`:                              1,
		`taskwire_tasks{queue="mail",status="pending"}`:                                   1,
		`taskwire_tasks_claimed_total`:                                                    2,
		`taskwire_tasks_completed_total`:                                                  1,
		`taskwire_rpc_request_duration_seconds_count{code="ok",method="task.create"}`:     4,
		`taskwire_rpc_request_duration_seconds_count{code="ok",method="task.claim"}`:      2,
		`taskwire_rpc_request_duration_seconds_count{code="ok",method="task.complete"}`:   1,
		`taskwire_rpc_request_duration_seconds_count{code="-32602",method="task.get"}`:    1,
		`taskwire_rpc_request_duration_seconds_count{code="ok",method="system.register"}`: 1,
		`taskwire_rpc_request_duration_seconds_count{code="-32601",method="unknown"}`:     1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// No series for a task status the server does not have, nor one per
	// made-up method name.
	for k := range got {
		if strings.Contains(k, "made.up") {
			t.Errorf("series %s: an unknown method name became a label", k)
		}
		if strings.HasPrefix(k, `taskwire_tasks{`) && got[k] != 0 && want[k] == 0 {
			t.Errorf("unexpected series %s = %v", k, got[k])
		}
	}
}

// parseMetrics reads the Prometheus text format into series -> value.
func parseMetrics(tb testing.TB, body []byte) map[string]float64 {
	tb.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			tb.Fatalf("metrics line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestPrometheusTasksZero checks that every status of a queue has its
// series, at 0 when no task has it: a series that vanishes when its last
// task moves on leaves sum() and alerts on it with no value at all.
func TestPrometheusTasksZero(t *testing.T) {
	t.Parallel()
	b := setup(t)
	register(t, b, "w1")
	createTask(t, b, nil)
	task := claimOne(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "result": 1})

	_, body := httpGet(t, b, "/metrics")
	got := parseMetrics(t, body)
	want := map[string]float64{
		`taskwire_tasks{queue="default",status="pending"}`:     0,
		`taskwire_tasks{queue="default",status="in_progress"}`: 0,
		`taskwire_tasks{queue="default",status="completed"}`:   1,
		`taskwire_tasks{queue="default",status="failed"}`:      0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// TestReadyzUnavailable checks that /readyz answers 503 when the store
// does not answer, with a body naming the backend (and not the cause,
// since the endpoint is open to anyone), and that the log says why, as
// it does for a scrape of /metrics.
func TestReadyzUnavailable(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setup(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	if err := b.srv.Service().Store().Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := httpGet(t, b, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz: HTTP %d, want 503", resp.StatusCode)
	}
	want := map[string]any{"status": "unavailable", "backends": map[string]any{"sqlite": "unavailable"}}
	if diff := cmp.Diff(want, rawObject(t, body)); diff != "" {
		t.Errorf("GET /readyz (-want +got):\n%s", diff)
	}
	if got := logs.String(); !strings.Contains(got, `"readyz"`) || !strings.Contains(got, "closed") {
		t.Errorf("log %q, want the failed check and its cause", got)
	}
	// A scrape that cannot read the counts leaves them out, and says why.
	if resp, _ := httpGet(t, b, "/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: HTTP %d, want 200 with the series it could read", resp.StatusCode)
	}
	if got := logs.String(); !strings.Contains(got, `"metrics: read task counts"`) {
		t.Errorf("log %q, want the scrape's failure", got)
	}
}

// TestUnknownEndpoint checks that a path no endpoint serves, and a method
// an endpoint does not take, are answered as all bad input is (SPEC 6): a
// JSON-RPC error object with id null, with 404, or with 405 and Allow.
func TestUnknownEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, ""},
		{http.MethodGet, "/v1/tasks", http.StatusNotFound, ""},
		{http.MethodPost, "/v1/tasks/t-1/events/more", http.StatusNotFound, ""},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/v1/tasks/t-1/result", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, "/", http.StatusMethodNotAllowed, "GET, HEAD"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, b.url+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, req)
		if resp.StatusCode != c.status || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: HTTP %d, Allow %q; want %d, %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), c.status, c.allow)
		}
		var got struct {
			JSONRPC string          `json:"jsonrpc"`
			Error   *taskwire.Error `json:"error"`
			ID      json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.JSONRPC != "2.0" || got.Error == nil ||
			got.Error.Code != taskwire.CodeInvalidRequest || string(got.ID) != "null" {
			t.Errorf("%s %s: body %q, want a JSON-RPC error %d with id null", c.method, c.path, body, taskwire.CodeInvalidRequest)
		}
	}
	// The endpoints themselves still answer.
	if resp, body := httpGet(t, b, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /: HTTP %d %.100q", resp.StatusCode, body)
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/auth"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/service"
)

// The tokens of the auth tests: one per role, the worker bound to w1.
const (
	adminToken    = "admin-token-0123456789"
	producerToken = "producer-token-0123456789"
	workerToken   = "worker-w1-token-0123456789"
)

// withTokens turns auth on with the tokens above; logs go to logs when it
// is not nil.
func withTokens(tb testing.TB, logs io.Writer) option {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "tokens.json")
	file := `[
		{"name": "ops", "role": "admin", "token": "` + adminToken + `"},
		{"name": "shop", "role": "producer", "token": "` + producerToken + `"},
		{"name": "w1-token", "role": "worker", "workerId": "w1", "sha256": "` + auth.Hash(workerToken) + `"}
	]`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		tb.Fatal(err)
	}
	tokens, err := auth.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	return func(c *Config) {
		c.Tokens = tokens
		if logs != nil {
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		}
	}
}

// as returns a client of b's server that sends token.
func as(b *bundle, token string) *rpctest.Client {
	cl := rpctest.New(b.url)
	cl.Token = token
	return cl
}

// roleFixture is the state every case of TestRoles starts from: workers
// w1 and w2 registered, one in-progress task each (own: w1's, other:
// w2's), and a pending task.
type roleFixture struct {
	own, other, pending *taskwire.Task
}

func newRoleFixture(t *testing.T, b *bundle) roleFixture {
	register(t, b, "w1")
	register(t, b, "w2")
	var f roleFixture
	createTask(t, b, params{"priority": 90})
	f.own = claimOne(t, b, "w1")
	createTask(t, b, params{"priority": 90})
	f.other = claimOne(t, b, "w2")
	f.pending = createTask(t, b, nil)
	return f
}

// pick returns the own or the other of two values.
func pick[T any](own bool, mine, theirs T) T {
	if own {
		return mine
	}
	return theirs
}

// roleCase is one method call of TestRoles; own selects the worker-w1 side
// (its id, its task) or the w2 side.
type roleCase struct {
	name   string
	method string
	params func(f roleFixture, own bool) params
	// allowed: the roles that may make the call, on their own side
	// ("worker") or on both ("worker*").
	allowed []string
	// refusedOther, when not 0, is the error of an admin's call on the
	// other side: a state conflict, not a question of role.
	refusedOther taskwire.Code
}

var roleCases = []roleCase{
	{"create", taskwire.MethodTaskCreate, func(roleFixture, bool) params { return params{"text": "new"} },
		[]string{"admin", "producer"}, 0},
	{"claim", taskwire.MethodTaskClaim, func(_ roleFixture, own bool) params {
		return params{"workerId": pick(own, "w1", "w2")}
	}, []string{"admin", "worker"}, 0},
	{"update", taskwire.MethodTaskUpdate, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID, "workerId": pick(own, "w1", "w2"), "updates": params{"text": "changed"}}
	}, []string{"admin", "worker"}, 0},
	// Without workerId a worker-role caller acts as its own worker.
	{"update, no workerId", taskwire.MethodTaskUpdate, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID, "updates": params{"priority": 7}}
	}, []string{"admin", "worker"}, 0},
	{"update of the status", taskwire.MethodTaskUpdate, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID, "updates": params{"status": "pending"}}
	}, []string{"admin"}, 0},
	{"complete", taskwire.MethodTaskComplete, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID, "workerId": pick(own, "w1", "w2"), "result": 1}
	}, []string{"admin", "worker"}, 0},
	{"complete, no workerId", taskwire.MethodTaskComplete, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID, "error": "gave up"}
	}, []string{"admin", "worker"}, 0},
	// A worker naming itself on another worker's task.
	{"complete as itself, another's task", taskwire.MethodTaskComplete, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID, "workerId": "w1", "result": 1}
	}, []string{"admin", "worker"}, taskwire.CodeConflict},
	{"list", taskwire.MethodTaskList, func(roleFixture, bool) params { return params{} },
		[]string{"admin", "producer", "worker*"}, 0},
	{"get", taskwire.MethodTaskGet, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID}
	}, []string{"admin", "producer", "worker*"}, 0},
	{"assign", taskwire.MethodTaskAssign, func(f roleFixture, own bool) params {
		return params{"taskId": f.pending.ID, "workerId": pick(own, "w1", "w2")}
	}, []string{"admin"}, 0},
	{"unassign", taskwire.MethodTaskUnassign, func(f roleFixture, own bool) params {
		return params{"taskId": pick(own, f.own, f.other).ID}
	}, []string{"admin"}, 0},
	{"delete", taskwire.MethodTaskDelete, func(f roleFixture, own bool) params {
		return params{"id": pick(own, f.own, f.other).ID}
	}, []string{"admin"}, 0},
	{"register", taskwire.MethodSystemRegister, func(_ roleFixture, own bool) params {
		return params{"id": pick(own, "w1", "w2"), "queues": []string{"q"}}
	}, []string{"admin", "worker"}, 0},
	{"heartbeat", taskwire.MethodSystemHeartbeat, func(_ roleFixture, own bool) params {
		return params{"workerId": pick(own, "w1", "w2")}
	}, []string{"admin", "worker"}, 0},
	{"unregister", taskwire.MethodSystemUnregister, func(_ roleFixture, own bool) params {
		return params{"id": pick(own, "w1", "w2")}
	}, []string{"admin", "worker"}, 0},
	{"workers", taskwire.MethodSystemWorkers, func(roleFixture, bool) params { return params{} },
		[]string{"admin"}, 0},
	{"health", taskwire.MethodSystemHealth, func(roleFixture, bool) params { return params{} },
		[]string{"admin", "producer", "worker*"}, 0},
	{"metrics", taskwire.MethodSystemMetrics, func(roleFixture, bool) params { return params{} },
		[]string{"admin", "producer", "worker*"}, 0},
	{"discover", taskwire.MethodDiscover, func(roleFixture, bool) params { return params{} },
		[]string{"admin", "producer", "worker*"}, 0},
}

// allows reports whether c lists role for the given side.
func (c roleCase) allows(role string, own bool) bool {
	for _, a := range c.allowed {
		if a == role+"*" || a == role && (own || role != "worker") {
			return true
		}
	}
	return false
}

// state is everything a call could change: every task, every worker and
// the event log, as an admin sees them.
func state(t *testing.T, b *bundle) string {
	t.Helper()
	tasks := listTasks(t, b, params{"limit": 1000})
	workers := call[json.RawMessage](t, b, taskwire.MethodSystemWorkers, params{})
	evs, err := b.srv.Service().Store().ReadEvents(context.Background(), "", 100000)
	if err != nil {
		t.Fatal(err)
	}
	return jsonText(map[string]any{"tasks": tasks, "workers": workers, "events": evs})
}

// TestRoles calls every method as every role, on its own side and the
// other worker's, over HTTP: an allowed call succeeds, a refused one is
// -32002 with a reason and changes nothing.
func TestRoles(t *testing.T) {
	t.Parallel()
	tokens := map[string]string{"admin": adminToken, "producer": producerToken, "worker": workerToken}
	for _, c := range roleCases {
		for _, role := range []string{"admin", "producer", "worker"} {
			for _, own := range []bool{true, false} {
				name := fmt.Sprintf("%s/%s/%s", c.name, role, pick(own, "own", "other"))
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					b, _ := withFakeClock(t, withTokens(t, nil))
					b.cl.Token = adminToken
					f := newRoleFixture(t, b)
					before := state(t, b)
					var raw json.RawMessage
					err := as(b, tokens[role]).Call(context.Background(), c.method, c.params(f, own), &raw)
					want := taskwire.CodeNotAllowed
					switch {
					case role == "admin" && !own && c.refusedOther != 0:
						want = c.refusedOther
					case c.allows(role, own):
						if err != nil {
							t.Fatalf("want success, got %v", err)
						}
						return
					}
					var rpcErr *taskwire.Error
					if !errors.As(err, &rpcErr) || rpcErr.Code != want {
						t.Fatalf("want %d, got %v (result %s)", want, err, raw)
					}
					if reason, _ := rpcErr.Data.(map[string]any)["reason"].(string); want == taskwire.CodeNotAllowed && reason == "" {
						t.Errorf("-32002 without a reason: %+v", rpcErr)
					}
					if diff := cmp.Diff(before, state(t, b)); diff != "" {
						t.Errorf("a refused call changed the state (-before +after):\n%s", diff)
					}
				})
			}
		}
	}
}

// TestUnauthorized: without a known token every guarded endpoint answers
// 401 with a JSON-RPC error body, and nothing runs; probes stay open.
func TestUnauthorized(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens(t, nil))
	b.cl.Token = adminToken
	createTask(t, b, nil)
	before := state(t, b)
	tests := []struct {
		name, method, path, auth, body string
	}{
		{"rpc without a token", "POST", "/rpc", "", `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"x"}}`},
		{"rpc with an unknown token", "POST", "/rpc", "Bearer nope-nope-nope-nope", `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"x"}}`},
		{"rpc with another scheme", "POST", "/rpc", "Basic " + adminToken, `{"jsonrpc":"2.0","id":1,"method":"task.create","params":{"text":"x"}}`},
		{"a batch", "POST", "/rpc", "", `[{"jsonrpc":"2.0","id":1,"method":"task.delete","params":{"id":"x"}}]`},
		{"not even JSON", "POST", "/rpc", "", `{`},
		{"events", "GET", "/events", "", ""},
		{"result", "GET", "/v1/tasks/t-1/result", "", ""},
		{"task events", "GET", "/v1/tasks/t-1/events", "", ""},
		{"metrics", "GET", "/metrics", "Bearer " + adminToken + "x", ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, b.url+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: HTTP %d, WWW-Authenticate %q; want 401 with a challenge", tt.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		var out struct {
			JSONRPC string          `json:"jsonrpc"`
			Error   *taskwire.Error `json:"error"`
			ID      any             `json:"id"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.JSONRPC != "2.0" || out.Error == nil ||
			out.Error.Code != taskwire.CodeNotAllowed || out.ID != nil {
			t.Errorf("%s: body %s, want a JSON-RPC -32002 error with id null", tt.name, body)
		}
	}
	if diff := cmp.Diff(before, state(t, b)); diff != "" {
		t.Errorf("unauthorized requests changed the state (-before +after):\n%s", diff)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if resp, _ := httpGet(t, b, path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s without a token: HTTP %d, want 200 (probes stay open)", path, resp.StatusCode)
		}
	}
}

// TestEndpointRoles: the result stream, a task's events and the metrics
// are open to every role, the event stream to admins and producers (a
// worker gets 403).
func TestEndpointRoles(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens(t, nil))
	b.cl.Token = adminToken
	register(t, b, "w1")
	task := createTask(t, b, nil)
	claimOne(t, b, "w1")
	call[taskwire.CompleteResult](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "result": "done"})
	tests := []struct {
		path, token string
		want        int
	}{
		{"/v1/tasks/" + task.ID + "/result", workerToken, 200},
		{"/v1/tasks/" + task.ID + "/result", producerToken, 200},
		{"/v1/tasks/" + task.ID + "/events", workerToken, 200},
		{"/v1/tasks/" + task.ID + "/events", producerToken, 200},
		{"/metrics", workerToken, 200},
		{"/metrics", producerToken, 200},
		{"/events?x", workerToken, 403},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", b.url+tt.path, nil)
		req.Header.Set("Authorization", "Bearer "+tt.token)
		if resp, body := do(t, req); resp.StatusCode != tt.want {
			t.Errorf("GET %s: HTTP %d %s, want %d", tt.path, resp.StatusCode, clipText(string(body)), tt.want)
		}
	}
	// The producer follows the events (the stream stays open: only the
	// status is read).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.url+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+producerToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /events as producer: HTTP %d, want 200", resp.StatusCode)
	}
}

// TestAuditWithoutAuth: with auth off every caller is an admin, and the
// audit line says so.
func TestAuditWithoutAuth(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setup(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	task := createTask(t, b, nil)
	call[taskwire.DeleteResult](t, b, taskwire.MethodTaskDelete, params{"id": task.ID})
	if !strings.Contains(logs.String(), `"msg":"audit","action":"task.delete","task":"`+task.ID+`"`) ||
		!strings.Contains(logs.String(), `"role":"admin"`) {
		t.Errorf("no audit line for task.delete with role admin in the log:\n%s", logs.String())
	}
}

// TestAudit: an admin action is logged with the token's name and the
// task's events name it too.
func TestAudit(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b, _ := withFakeClock(t, withTokens(t, &logs))
	b.cl.Token = adminToken
	register(t, b, "w1")
	task := createTask(t, b, nil)
	call[taskwire.AssignResult](t, b, taskwire.MethodTaskAssign, params{"taskId": task.ID, "workerId": "w1"})
	call[taskwire.UnassignResult](t, b, taskwire.MethodTaskUnassign, params{"taskId": task.ID})
	call[*taskwire.Task](t, b, taskwire.MethodTaskUpdate, params{"id": task.ID, "updates": params{"status": "failed"}})
	call[taskwire.DeleteResult](t, b, taskwire.MethodTaskDelete, params{"id": task.ID})

	for _, action := range []string{"task.assign", "task.unassign", "task.update", "task.delete"} {
		if !strings.Contains(logs.String(), `"msg":"audit","action":"`+action+`","task":"`+task.ID+`","by":"ops"`) {
			t.Errorf("no audit line for %s by ops in the log:\n%s", action, logs.String())
		}
	}
	evs, err := b.srv.Service().Store().ReadEvents(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[taskwire.EventType]string{
		taskwire.EventTaskCreated: "createdBy", taskwire.EventTaskAssigned: "assignedBy",
		taskwire.EventTaskUnassigned: "unassignedBy", taskwire.EventTaskUpdated: "updatedBy",
		taskwire.EventTaskDeleted: "deletedBy",
	}
	seen := map[taskwire.EventType]bool{}
	for _, e := range evs {
		key, ok := want[e.Type]
		if !ok || e.TaskID != task.ID {
			continue
		}
		seen[e.Type] = true
		var md map[string]any
		if err := json.Unmarshal(e.Metadata, &md); err != nil || md[key] != "ops" {
			t.Errorf("%s: metadata %s, want %s ops", e.Type, e.Metadata, key)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("events seen %v, want each of %v", seen, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestRateLimitPerToken: with auth, the rate-limit principal is the
// token's name, whatever address or worker id the call comes with.
func TestRateLimitPerToken(t *testing.T) {
	t.Parallel()
	b, _ := withFakeClock(t, withTokens(t, nil), withRateLimits(map[string]service.Limit{
		taskwire.MethodTaskList: {N: 2, Per: time.Minute},
	}))
	admin, producer := as(b, adminToken), as(b, producerToken)
	ctx := context.Background()
	for range 2 {
		if err := admin.Call(ctx, taskwire.MethodTaskList, params{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var rpcErr *taskwire.Error
	// Another connection with the same token shares the allowance.
	if err := as(b, adminToken).Call(ctx, taskwire.MethodTaskList, params{}, nil); !errors.As(err, &rpcErr) ||
		rpcErr.Code != taskwire.CodeRateLimited {
		t.Fatalf("3rd list with the admin token: %v, want -32000", err)
	}
	// Another token has its own.
	if err := producer.Call(ctx, taskwire.MethodTaskList, params{}, nil); err != nil {
		t.Errorf("the producer's first list: %v", err)
	}
}

// TestAuthenticateForTransports: the entry point of transports that get
// the token in a message.
func TestAuthenticateForTransports(t *testing.T) {
	t.Parallel()
	on := setup(t, withTokens(t, nil))
	ctx := context.Background()
	if _, ok := on.srv.Authenticate(ctx, "nope", "10.0.0.1:5"); ok {
		t.Error("an unknown token was accepted")
	}
	got, ok := on.srv.Authenticate(ctx, workerToken, "10.0.0.1:5")
	want := service.Caller{Name: "w1-token", Addr: "10.0.0.1:5", Role: auth.RoleWorker, WorkerID: "w1"}
	if diff := cmp.Diff(want, service.CallerFrom(got)); !ok || diff != "" {
		t.Errorf("worker token: ok %v (-want +got):\n%s", ok, diff)
	}
	// The service then holds the caller to its role.
	if err := on.srv.Service().Admit(got, taskwire.MethodEventsSubscribe); err == nil {
		t.Error("a worker may follow the events")
	}
	off := setup(t)
	got, ok = off.srv.Authenticate(ctx, "", "10.0.0.1:5")
	if !ok || off.srv.Service().Admit(got, taskwire.MethodTaskDelete) != nil {
		t.Errorf("auth off: ok %v, want an admin caller", ok)
	}
}

// TestWorkerTokenConflicts: a worker's token on a task another worker
// holds is not allowed (-32002), but what is in the way whoever asks (a
// stale attempt, a final task) is a conflict (-32003), as without auth;
// nothing changes either way.
func TestWorkerTokenConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens(t, nil))
	b.cl.Token = adminToken
	register(t, b, "w1")
	register(t, b, "w2")
	createTask(t, b, nil)
	task := claimOne(t, b, "w1") // attempt 1
	call[taskwire.UnassignResult](t, b, taskwire.MethodTaskUnassign, params{"taskId": task.ID})
	if again := claimOne(t, b, "w2"); again.ID != task.ID || again.Attempt != 2 {
		t.Fatalf("w2 claimed %s attempt %d, want %s attempt 2", again.ID, again.Attempt, task.ID)
	}
	w1 := as(b, workerToken)
	try := func(name string, want taskwire.Code, method string, p params) {
		t.Helper()
		before := state(t, b)
		var raw json.RawMessage
		err := w1.Call(context.Background(), method, p, &raw)
		var rpcErr *taskwire.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != want {
			t.Errorf("%s: want %d, got %v (result %s)", name, want, err, raw)
		}
		if diff := cmp.Diff(before, state(t, b)); diff != "" {
			t.Errorf("%s changed the state (-before +after):\n%s", name, diff)
		}
	}
	try("a zombie's completion", taskwire.CodeConflict, taskwire.MethodTaskComplete,
		params{"id": task.ID, "workerId": "w1", "attempt": 1, "result": 1})
	try("a zombie's update", taskwire.CodeConflict, taskwire.MethodTaskUpdate,
		params{"id": task.ID, "workerId": "w1", "attempt": 1, "updates": params{"text": "late"}})
	try("a completion of w2's task", taskwire.CodeNotAllowed, taskwire.MethodTaskComplete,
		params{"id": task.ID, "result": 1})
	try("an update of w2's task", taskwire.CodeNotAllowed, taskwire.MethodTaskUpdate,
		params{"id": task.ID, "updates": params{"text": "mine"}})
	call[json.RawMessage](t, b, taskwire.MethodTaskComplete, params{"id": task.ID, "workerId": "w2", "result": 2})
	try("a completion of a completed task", taskwire.CodeConflict, taskwire.MethodTaskComplete,
		params{"id": task.ID, "result": 1})
}

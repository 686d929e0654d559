package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// echoParams is a small params type with bounds of each kind.
type echoParams struct {
	Text string   `json:"text" jsonschema:"minLength=1,maxLength=10"`
	N    *int     `json:"n,omitempty" jsonschema:"minimum=0,maximum=100"`
	Tags []string `json:"tags,omitempty" jsonschema:"maxItems=3,pattern=^[a-z]+$"`
}

// failParams names the error the fail method returns.
type failParams struct {
	Kind string `json:"kind"`
}

// errSQL stands for an error whose text must never reach a client.
var errSQL = errors.New(`pq: relation "tasks" does not exist (SELECT * FROM tasks)`)

// failures are the errors the fail method returns, by kind.
var failures = map[string]error{
	"task":   fmt.Errorf("get: %w", &store.TaskNotFoundError{ID: "t-1"}),
	"worker": &store.WorkerNotFoundError{ID: "w-1"},
	"conflict": &store.ConflictError{TaskID: "t-1", Status: taskwire.StatusCompleted,
		AssignedTo: "w-2", Reason: "task is completed"},
	"unassigned": &store.ConflictError{TaskID: "t-1", Status: taskwire.StatusPending,
		Reason: "task is not assigned"},
	"unavailable": fmt.Errorf("complete: %w", &store.UnavailableError{Backend: "postgres",
		RetryAfter: 2 * time.Second, Err: errSQL}),
	"unavailable-bare": fmt.Errorf("claim: %w", store.ErrUnavailable),
	"too-large":        store.ErrTooLarge,
	"rpc":              &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Not allowed", Data: map[string]any{"reason": "role"}},
	"internal":         fmt.Errorf("list: %w", errSQL),
	"canceled":         fmt.Errorf("claim: %w", context.Canceled),
	"bad-data":         &taskwire.Error{Code: taskwire.CodeNotAllowed, Message: "Not allowed", Data: make(chan int)},
}

// crossParams has a Validate method that returns a plain error.
type crossParams struct {
	A int `json:"a"`
	B int `json:"b"`
}

func (p *crossParams) Validate() error {
	if p.A > p.B {
		return errors.New("a must not exceed b")
	}
	return nil
}

// bundle is a test server with what it records.
type bundle struct {
	srv  *Server
	http *httptest.Server
	logs *syncBuffer

	mu       sync.Mutex
	observed []observation
}

type observation struct {
	method string
	code   taskwire.Code
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testMethods are the dummy methods of the tests.
func testMethods() []Method {
	return []Method{
		Register("echo", "Returns its params.", func(_ context.Context, p *echoParams) (*echoParams, error) {
			return p, nil
		}),
		Register("fail", "Returns the error named by kind.", func(_ context.Context, p *failParams) (any, error) {
			return nil, failures[p.Kind]
		}),
		Register("panic", "Panics.", func(context.Context, *taskwire.NoParams) (any, error) {
			panic("boom")
		}),
		Register("inf", "Returns a result JSON cannot hold.", func(context.Context, *taskwire.NoParams) (float64, error) {
			return math.Inf(1), nil
		}),
		Register("none", "Takes no params.", func(context.Context, *taskwire.NoParams) (string, error) {
			return "ok", nil
		}),
		Register("addr", "Returns the client address.", func(ctx context.Context, _ *taskwire.NoParams) (string, error) {
			return ClientAddr(ctx), nil
		}),
		Register("cross", "Has a Validate method.", func(_ context.Context, p *crossParams) (int, error) {
			return p.B - p.A, nil
		}),
		Register(taskwire.MethodTaskCreate, "Creates a task.", func(_ context.Context, p *taskwire.CreateParams) (*taskwire.CreateParams, error) {
			return p, nil
		}),
		Register(taskwire.MethodTaskUpdate, "Updates a task.", func(_ context.Context, p *taskwire.UpdateParams) (*taskwire.UpdateParams, error) {
			return p, nil
		}),
		Register(taskwire.MethodTaskClaim, "Claims tasks.", func(_ context.Context, p *taskwire.ClaimParams) (*taskwire.ClaimResult, error) {
			return &taskwire.ClaimResult{}, nil
		}),
		Register(taskwire.MethodTaskComplete, "Completes a task.", func(_ context.Context, p *taskwire.CompleteParams) (int, error) {
			return len(p.Result), nil
		}),
	}
}

// setup starts a test server over testMethods and extra with opts.
func setup(t *testing.T, opts Options, extra ...Method) *bundle {
	t.Helper()
	b := &bundle{logs: &syncBuffer{}}
	opts.Logger = slog.New(slog.NewTextHandler(b.logs, nil))
	opts.Observe = func(method string, _ time.Duration, code taskwire.Code) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.observed = append(b.observed, observation{method, code})
	}
	b.srv = NewServer(append(testMethods(), extra...), opts)
	b.http = httptest.NewServer(b.srv)
	t.Cleanup(b.http.Close)
	return b
}

// do sends body with HTTP method verb and returns the response.
func (b *bundle) do(t *testing.T, verb string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(verb, b.http.URL+"/rpc", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// post sends body with POST and returns the status and the body.
func (b *bundle) post(t *testing.T, body string) (int, []byte) {
	t.Helper()
	resp, out := b.do(t, http.MethodPost, strings.NewReader(body))
	return resp.StatusCode, out
}

// rpcError is a decoded error response.
type rpcError struct {
	Code    taskwire.Code  `json:"code"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// call posts one request and returns its decoded error, or its result.
func (b *bundle) call(t *testing.T, body string) (result json.RawMessage, e *rpcError) {
	t.Helper()
	status, out := b.post(t, body)
	if status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", status, out)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp.Result, resp.Error
}

// decodeJSON decodes b into any, failing the test when it is not JSON.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	return v
}

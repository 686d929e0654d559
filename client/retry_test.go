package client_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/service"
)

// unavailableFront answers -32001 (retryAfterMs 20) to the first n /rpc
// calls, then passes them to the real server; calls counts every /rpc
// request.
func unavailableFront(t *testing.T, b *bundle, n int64, calls *atomic.Int64) string {
	return front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/rpc" {
			return false
		}
		body := peekBody(r)
		if calls.Add(1) > n {
			return false
		}
		var req struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{
			"code": -32001, "message": "Backend unavailable", "data": map[string]any{"backend": "postgres", "retryAfterMs": 20}}})
		return true
	})
}

// TestRetryUnavailable: safe calls are retried through -32001 answers,
// unsafe ones are not, and MaxAttempts bounds the attempts.
func TestRetryUnavailable(t *testing.T) {
	t.Parallel()

	t.Run("read retried until it succeeds", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		task := create(t, b, taskwire.CreateParams{Text: "x"})
		var calls atomic.Int64
		c := newClient(unavailableFront(t, b, 3, &calls))
		got, err := c.GetTask(ctx(t), task.ID)
		if err != nil || got.ID != task.ID {
			t.Fatalf("get = %v, %v", got, err)
		}
		if calls.Load() != 4 {
			t.Fatalf("%d requests, want 3 refused + 1", calls.Load())
		}
	})

	t.Run("create without idempotency key is not retried", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var calls atomic.Int64
		c := newClient(unavailableFront(t, b, 1, &calls))
		_, err := c.CreateTask(ctx(t), taskwire.CreateParams{Text: "once"})
		if !client.IsUnavailable(err) || calls.Load() != 1 {
			t.Fatalf("err %v after %d requests; want -32001 after 1", err, calls.Load())
		}
		if d, ok := client.RetryAfter(err); !ok || d != 20*time.Millisecond {
			t.Fatalf("RetryAfter = %v, %v", d, ok)
		}
		list, _ := b.c.ListTasks(ctx(t), taskwire.ListParams{})
		if list.TotalCount != 0 {
			t.Fatalf("%d tasks exist", list.TotalCount)
		}
	})

	t.Run("create with idempotency key is retried and creates one task", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var calls atomic.Int64
		c := newClient(unavailableFront(t, b, 2, &calls))
		task, err := c.CreateTask(ctx(t), taskwire.CreateParams{Text: "once", IdempotencyKey: "k1"})
		if err != nil || calls.Load() != 3 {
			t.Fatalf("create: %v after %d requests", err, calls.Load())
		}
		list, _ := b.c.ListTasks(ctx(t), taskwire.ListParams{})
		if list.TotalCount != 1 || list.Tasks[0].ID != task.ID {
			t.Fatalf("tasks: %+v", list)
		}
	})

	t.Run("max attempts bounds the retries", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var calls atomic.Int64
		c := client.New(unavailableFront(t, b, 100, &calls), client.Options{MaxAttempts: 3, MinBackoff: time.Millisecond})
		_, err := c.ListTasks(ctx(t), taskwire.ListParams{})
		if !client.IsUnavailable(err) || calls.Load() != 3 {
			t.Fatalf("err %v after %d requests; want -32001 after 3", err, calls.Load())
		}
	})

	t.Run("completion retried after the server came back", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		task := create(t, b, taskwire.CreateParams{Text: "x"})
		if _, err := b.c.Register(ctx(t), taskwire.RegisterParams{ID: "w1"}); err != nil {
			t.Fatal(err)
		}
		claim, err := b.c.ClaimTasks(ctx(t), taskwire.ClaimParams{WorkerID: "w1"})
		if err != nil || !claim.Claimed {
			t.Fatal(claim, err)
		}
		var calls atomic.Int64
		c := newClient(unavailableFront(t, b, 2, &calls))
		done, err := c.CompleteTask(ctx(t), taskwire.CompleteParams{ID: task.ID, WorkerID: "w1", Attempt: client.Ptr(1)})
		if err != nil || done.Status != taskwire.StatusCompleted {
			t.Fatalf("complete = %+v, %v", done, err)
		}
	})
}

// TestRetryRateLimited runs against a real limit of one task.list per
// second: the second call is refused with -32000 and retryAfterMs, and a
// client that retries waits that long and succeeds.
func TestRetryRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, withRateLimits(map[string]service.Limit{taskwire.MethodTaskList: {N: 1, Per: time.Second}}))
	once := client.New(b.url, client.Options{MaxAttempts: 1})
	if _, err := once.ListTasks(ctx(t), taskwire.ListParams{}); err != nil {
		t.Fatal(err)
	}
	_, err := once.ListTasks(ctx(t), taskwire.ListParams{})
	wait, ok := client.RetryAfter(err)
	if !client.IsRateLimited(err) || !ok || wait <= 0 || wait > time.Second {
		t.Fatalf("second call: %v (retry after %v, %v); want -32000 with retryAfterMs", err, wait, ok)
	}

	start := time.Now()
	if _, err := b.c.ListTasks(ctx(t), taskwire.ListParams{}); err != nil {
		t.Fatalf("retrying client: %v", err)
	}
	if waited := time.Since(start); waited < wait/2 {
		t.Fatalf("succeeded after %v; the server asked for %v", waited, wait)
	}
}

// countingTransport counts the requests handed to the HTTP transport.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestUnsendableNotRetried: a request HTTP cannot carry (a token with a
// line break, a base URL that does not parse) fails without reaching the
// transport, where a token with a line break was sent, refused by the
// transport and tried again as a failed connection is (five requests),
// and the error does not quote the token.
func TestUnsendableNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, c := range map[string]struct{ url, token string }{
		"token":    {b.url, "secret\nX-Injected: 1"},
		"base URL": {"http://[::1", ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr := &countingTransport{}
			cl := client.New(c.url, client.Options{Token: c.token, MaxAttempts: 5, MinBackoff: time.Millisecond,
				HTTPClient: &http.Client{Transport: tr}})
			_, err := cl.ListTasks(ctx(t), taskwire.ListParams{})
			if err == nil || tr.n.Load() != 0 {
				t.Fatalf("ListTasks = %v after %d requests; want an error before any", err, tr.n.Load())
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

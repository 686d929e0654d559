package client_test

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// TestBatch sends several calls in one request and reads each outcome.
func TestBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var requests atomic.Int64
	c := newClient(front(t, b.url, func(http.ResponseWriter, *http.Request) bool { requests.Add(1); return false }))

	batch := c.NewBatch()
	var creates []*client.Result[taskwire.Task]
	for _, text := range []string{"a", "b", "c"} {
		creates = append(creates, batch.CreateTask(taskwire.CreateParams{Text: text}))
	}
	missing := batch.GetTask("t-missing")
	bad := batch.CreateTask(taskwire.CreateParams{Text: ""})
	if _, err := missing.Get(); err != client.ErrNotSent {
		t.Fatalf("before Send: %v", err)
	}
	if err := batch.Send(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 1 {
		t.Fatalf("%d HTTP requests, want 1", requests.Load())
	}
	for i, r := range creates {
		task, err := r.Get()
		if err != nil || task.Text != string(rune('a'+i)) {
			t.Fatalf("create %d = %+v, %v", i, task, err)
		}
		if got := get(t, b, task.ID); got.Text != task.Text {
			t.Fatalf("stored %q", got.Text)
		}
	}
	if _, err := missing.Get(); !client.IsNotFound(err) {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := bad.Get(); client.CodeOf(err) != taskwire.CodeInvalidParams {
		t.Fatalf("bad create: %v", err)
	}
}

// TestBatchRetriesSafeCalls: in a batch answered -32001 for some calls,
// only the safe ones are sent again.
func TestBatchRetriesSafeCalls(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var first atomic.Bool
	c := newClient(front(t, b.url, func(w http.ResponseWriter, r *http.Request) bool {
		if first.Swap(true) {
			return false
		}
		// The first batch: every call is refused as unavailable.
		var reqs []struct {
			ID json.RawMessage `json:"id"`
		}
		body := peekBody(r)
		_ = json.Unmarshal(body, &reqs)
		resps := make([]any, len(reqs))
		for i, q := range reqs {
			resps[i] = map[string]any{"jsonrpc": "2.0", "id": q.ID, "error": map[string]any{
				"code": -32001, "message": "Backend unavailable", "data": map[string]any{"retryAfterMs": 5}}}
		}
		_ = json.NewEncoder(w).Encode(resps)
		return true
	}))
	batch := c.NewBatch()
	keyed := batch.CreateTask(taskwire.CreateParams{Text: "keyed", IdempotencyKey: "k"})
	plain := batch.CreateTask(taskwire.CreateParams{Text: "plain"})
	if err := batch.Send(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if task, err := keyed.Get(); err != nil || task.Text != "keyed" {
		t.Fatalf("keyed create = %+v, %v; want retried", task, err)
	}
	if _, err := plain.Get(); !client.IsUnavailable(err) {
		t.Fatalf("plain create: %v; want -32001, not retried", err)
	}
	list, _ := b.c.ListTasks(ctx(t), taskwire.ListParams{})
	if list.TotalCount != 1 {
		t.Fatalf("%d tasks stored, want 1", list.TotalCount)
	}
}

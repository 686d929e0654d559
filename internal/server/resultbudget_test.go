package server

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// budgetFixture is a server whose result budget holds one of two large
// results at a time, the two tasks with them, and one without a result.
type budgetFixture struct {
	b     *bundle
	large []string
	small string
}

func newBudgetFixture(t *testing.T) budgetFixture {
	t.Helper()
	const size = 200 << 10 // over taskwire.ListResultLimit: counted
	b := setup(t, func(c *Config) { c.ResultBudget = 300 << 10 })
	register(t, b, "w1")
	result := []byte(`"` + strings.Repeat("x", size-2) + `"`)
	f := budgetFixture{b: b}
	for range 2 {
		task := createTask(t, b, params{})
		claimOne(t, b, "w1")
		completeRaw(t, b, task.ID, "w1", result)
		f.large = append(f.large, task.ID)
	}
	f.small = createTask(t, b, params{}).ID
	return f
}

func (f budgetFixture) batch() []rpctest.Call {
	var calls []rpctest.Call
	for _, id := range append(f.large, f.small) {
		calls = append(calls, rpctest.Call{Method: taskwire.MethodTaskGet, Params: params{"id": id}})
	}
	return calls
}

// checkBudgetBatch checks the answers of f.batch(): of the two large
// results one is answered and the other refused with -32001 (memory,
// retry after a second), as the budget holds one; the task without a
// result is answered.
func checkBudgetBatch(t *testing.T, rs []rpctest.Response) {
	t.Helper()
	if len(rs) != 3 {
		t.Fatalf("%d answers, want 3", len(rs))
	}
	var answered, refused int
	for _, r := range rs[:2] {
		switch {
		case r.Error == nil:
			answered++
		case r.Error.Code == taskwire.CodeUnavailable:
			refused++
			data, _ := json.Marshal(r.Error.Data)
			if !strings.Contains(string(data), `"backend":"memory"`) || !strings.Contains(string(data), `"retryAfterMs":1000`) {
				t.Errorf("refusal data %s, want backend memory and retryAfterMs 1000", data)
			}
		default:
			t.Errorf("task.get: %v", r.Error)
		}
	}
	if answered != 1 || refused != 1 {
		t.Errorf("large results: %d answered and %d refused, want 1 and 1", answered, refused)
	}
	if rs[2].Error != nil {
		t.Errorf("task.get of the task without a result: %v", rs[2].Error)
	}
}

// task.get answers that carry large results share a memory budget, from
// the read until the answer is written: a batch's calls that do not fit
// are refused, and the share comes back once the answer is sent (the
// second batch fares as the first).
func TestResultBudgetBatch(t *testing.T) {
	t.Parallel()
	f := newBudgetFixture(t)
	for range 2 {
		rs, err := f.b.cl.Batch(context.Background(), f.batch())
		if err != nil {
			t.Fatal(err)
		}
		checkBudgetBatch(t, rs)
	}
}

// A single task.get waits for its share instead of being refused: two at
// once both get their result, one after the other.
func TestResultBudgetSingleWaits(t *testing.T) {
	t.Parallel()
	f := newBudgetFixture(t)
	var wg sync.WaitGroup
	for range 3 {
		for _, id := range f.large {
			wg.Go(func() {
				task := call[*taskwire.Task](t, f.b, taskwire.MethodTaskGet, params{"id": id})
				if task.ResultSize != 200<<10 || len(task.Result) != 200<<10 {
					t.Errorf("task.get %s: result of %d bytes, size %d", id, len(task.Result), task.ResultSize)
				}
			})
		}
	}
	wg.Wait()
}

// Over WebSocket the share is held until the answer is written too.
func TestResultBudgetWebSocket(t *testing.T) {
	t.Parallel()
	f := newBudgetFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.b.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	var batch []map[string]any
	for i, call := range f.batch() {
		batch = append(batch, map[string]any{"jsonrpc": "2.0", "id": i, "method": call.Method, "params": call.Params})
	}
	msg, _ := json.Marshal(batch)
	send := func() []rpctest.Response {
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		_, answer, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var rs []rpctest.Response
		if err := json.Unmarshal(answer, &rs); err != nil {
			t.Fatalf("%.200s: %v", answer, err)
		}
		return rs
	}
	for range 2 {
		rs := send()
		// The share of the answer before comes back once the server's
		// write of it returns, which can be just after this client has
		// read it: a batch sent in between finds no room for either
		// result. A share never given back fails every try.
		for try := 0; try < 50 && len(rs) == 3 && refusedBoth(rs); try++ {
			time.Sleep(10 * time.Millisecond)
			rs = send()
		}
		checkBudgetBatch(t, rs)
	}
}

// refusedBoth reports whether both large results of a budget batch were
// refused.
func refusedBoth(rs []rpctest.Response) bool {
	for _, r := range rs[:2] {
		if r.Error == nil || r.Error.Code != taskwire.CodeUnavailable {
			return false
		}
	}
	return true
}

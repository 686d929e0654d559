package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskwire/taskwire"
)

// batchOf returns a batch of n calls of echo with ids 0..n-1.
func batchOf(n int) string {
	calls := make([]string, n)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"echo","params":{"text":"m%d"},"id":%d}`, i%100, i)
	}
	return "[" + strings.Join(calls, ",") + "]"
}

// TestBatch1000 checks that a batch of 1,000 calls gets 1,000 responses,
// each with the result of the call of its id.
func TestBatch1000(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	status, out := b.post(t, batchOf(1000))
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	var responses []struct {
		Result struct{ Text string } `json:"result"`
		ID     int                   `json:"id"`
	}
	if err := json.Unmarshal(out, &responses); err != nil {
		t.Fatalf("%.300s: %v", out, err)
	}
	if len(responses) != 1000 {
		t.Fatalf("%d responses, want 1000", len(responses))
	}
	seen := map[int]bool{}
	for _, r := range responses {
		if want := fmt.Sprintf("m%d", r.ID%100); r.Result.Text != want {
			t.Errorf("id %d: result %q, want %q", r.ID, r.Result.Text, want)
		}
		seen[r.ID] = true
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct ids, want 1000", len(seen))
	}
}

// TestBatchLimit checks that a batch over MaxBatch is one error naming the
// limit, and that a batch at the limit is served.
func TestBatchLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{MaxBatch: 3})
	_, out := b.post(t, batchOf(4))
	want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: a batch holds at most 3 requests",` +
		`"data":{"field":"batch","limit":3}},"id":null}`
	if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, out)); diff != "" {
		t.Errorf("over the limit (-want +got):\n%s", diff)
	}
	_, out = b.post(t, batchOf(3))
	if got, ok := decodeJSON(t, out).([]any); !ok || len(got) != 3 {
		t.Errorf("at the limit: %s, want 3 responses", out)
	}
}

// TestBatchConcurrency checks that the calls of a batch run concurrently,
// but never more than BatchConcurrency at a time.
func TestBatchConcurrency(t *testing.T) {
	t.Parallel()
	var running, most atomic.Int32
	slow := Register("slow", "", func(context.Context, *taskwire.NoParams) (bool, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		return true, nil
	})
	b := setup(t, Options{BatchConcurrency: 4}, slow)
	calls := make([]string, 40)
	for i := range calls {
		calls[i] = fmt.Sprintf(`{"jsonrpc":"2.0","method":"slow","id":%d}`, i)
	}
	_, out := b.post(t, "["+strings.Join(calls, ",")+"]")
	if got, ok := decodeJSON(t, out).([]any); !ok || len(got) != 40 {
		t.Fatalf("%.300s, want 40 responses", out)
	}
	if m := most.Load(); m < 2 || m > 4 {
		t.Errorf("at most %d calls ran at once, want 2 to 4", m)
	}
}

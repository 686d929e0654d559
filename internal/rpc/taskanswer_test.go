package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
)

// resultParams asks the task method for a task whose result is the JSON
// array of n numbers, spaced when spaced, or not JSON when broken.
type resultParams struct {
	N      int  `json:"n"`
	Spaced bool `json:"spaced,omitempty"`
	Broken bool `json:"broken,omitempty"`
}

// taskWithResult is the task the task method answers for p.
func taskWithResult(p *resultParams) *taskwire.Task {
	sep := ","
	if p.Spaced {
		sep = ", "
	}
	result := "[" + strings.TrimSuffix(strings.Repeat("1234567"+sep, p.N), sep) + "]"
	if p.Broken {
		result = result[:len(result)-1]
	}
	return &taskwire.Task{ID: "t-1", Queue: "default", Text: `<b> & "q"`, Status: taskwire.StatusCompleted,
		Metadata: json.RawMessage(`{"k": [1, 2]}`), Result: json.RawMessage(result), ResultSize: int64(len(result))}
}

// TestTaskAnswer: a task is answered as encoding/json writes it
// (taskwire.MarshalJSON), whether its result is small or large (written
// around, not copied), compact or spaced (compacted), alone, in a batch
// or as one message; a result that is not JSON is an internal error.
func TestTaskAnswer(t *testing.T) {
	b := setup(t, Options{}, Register("task", "Answers a task.", func(_ context.Context, p *resultParams) (*taskwire.Task, error) {
		return taskWithResult(p), nil
	}))
	want := func(p resultParams, id int) string {
		enc, err := taskwire.MarshalJSON(taskWithResult(&p))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf(`{"jsonrpc":"2.0","result":%s,"id":%d}`, enc, id)
	}
	request := func(p resultParams, id int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"task","params":{"n":%d,"spaced":%t}}`, id, p.N, p.Spaced)
	}
	for _, p := range []resultParams{{N: 3}, {N: 3, Spaced: true}, {N: 20000}, {N: 20000, Spaced: true}} {
		name := fmt.Sprintf("n=%d/spaced=%t", p.N, p.Spaced)
		t.Run(name, func(t *testing.T) {
			resp, body := b.do(t, http.MethodPost, strings.NewReader(request(p, 1)))
			if resp.StatusCode != http.StatusOK || string(body) != want(p, 1) {
				t.Errorf("HTTP %d, answer %.200s\nwant %.200s", resp.StatusCode, body, want(p, 1))
			}
			resp, body = b.do(t, http.MethodPost, strings.NewReader("["+request(p, 1)+","+request(p, 2)+"]"))
			if wantBatch := "[" + want(p, 1) + "," + want(p, 2) + "]"; resp.StatusCode != http.StatusOK || string(body) != wantBatch {
				t.Errorf("batch: HTTP %d, answer %.200s\nwant %.200s", resp.StatusCode, body, wantBatch)
			}
			parts, release := b.srv.Answer(context.Background(), []byte(request(p, 3)))
			release()
			if msg := bytes.Join(parts, nil); string(msg) != want(p, 3) {
				t.Errorf("message: %.200s\nwant %.200s", msg, want(p, 3))
			}
		})
	}
	for _, n := range []int{3, 20000} {
		resp, body := b.do(t, http.MethodPost, strings.NewReader(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"task","params":{"n":%d,"broken":true}}`, n)))
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"code":-32603`)) {
			t.Errorf("n=%d, a result that is not JSON: HTTP %d %.200s", n, resp.StatusCode, body)
		}
	}
	if !strings.Contains(b.logs.String(), "cannot encode result") {
		t.Errorf("the broken results were not logged: %s", b.logs.String())
	}
}

// TestClaimAnswer: a task.claim result is answered as encoding/json writes
// it (taskwire.ClaimResult.AppendJSON); one whose task does not encode to
// JSON is an internal error.
func TestClaimAnswer(t *testing.T) {
	b := setup(t, Options{}, Register("claim", "Answers a claim.", func(_ context.Context, p *resultParams) (*taskwire.ClaimResult, error) {
		task := taskWithResult(p)
		return &taskwire.ClaimResult{Claimed: true, TaskID: task.ID, Task: task, Tasks: []*taskwire.Task{task}}, nil
	}))
	p := resultParams{N: 3}
	task := taskWithResult(&p)
	enc, err := taskwire.MarshalJSON(taskwire.ClaimResult{Claimed: true, TaskID: task.ID, Task: task, Tasks: []*taskwire.Task{task}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"jsonrpc":"2.0","result":%s,"id":1}`, enc)
	resp, body := b.do(t, http.MethodPost, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"claim","params":{"n":3}}`))
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Errorf("HTTP %d, answer %s\nwant %s", resp.StatusCode, body, want)
	}
	resp, body = b.do(t, http.MethodPost, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"claim","params":{"n":3,"broken":true}}`))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"code":-32603`)) {
		t.Errorf("a result that is not JSON: HTTP %d %s", resp.StatusCode, body)
	}
}

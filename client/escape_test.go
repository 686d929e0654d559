package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

// The client sends <, > and & as they are, not as the 6-byte escapes of
// json.Marshal, which would make 12 KB of & in metadata 72 KB on the wire:
// single calls, batches, a worker's registration and its handler's
// results alike.
func TestParamsNotHTMLEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	c := newClient(front(t, b.url, func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, peekBody(r))
		return false
	}))
	meta := json.RawMessage(`{"a":"` + strings.Repeat("&", 12000) + `"}`)

	task, err := c.CreateTask(ctx(t), taskwire.CreateParams{Text: "<&>", Metadata: meta})
	if err != nil {
		t.Fatal(err)
	}
	if task.Text != "<&>" || string(task.Metadata) != string(meta) {
		t.Errorf("created task: text %q, metadata %.40s; want <&> and the metadata sent", task.Text, task.Metadata)
	}
	batch := c.NewBatch()
	results := []*client.Result[taskwire.Task]{
		batch.CreateTask(taskwire.CreateParams{Text: "<&>", Metadata: meta}),
		batch.CreateTask(taskwire.CreateParams{Text: "<&>", Metadata: meta}),
	}
	if err := batch.Send(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if _, err := r.Get(); err != nil {
			t.Errorf("batch call %d: %v", i, err)
		}
	}
	w := client.NewWorker(c, client.WorkerOptions{ID: "w1", Metadata: meta, ExitWhenIdle: true, Logger: quietLogger()},
		func(context.Context, *taskwire.Task) (any, error) { return map[string]string{"r": "<&>"}, nil })
	wait(t, runWorker(ctx(t), w))
	if got := get(t, b, task.ID); string(got.Result) != `{"r":"<&>"}` {
		t.Errorf("result %s, want {\"r\":\"<&>\"}", got.Result)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, body := range bodies {
		for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
			if bytes.Contains(body, []byte(esc)) {
				t.Errorf("request body holds %s: %.200s", esc, body)
				break
			}
		}
	}
}

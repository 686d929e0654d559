package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/servertest"
)

// TestProducer runs the example against an in-process server, with a
// worker that upper-cases texts, and checks what it prints.
func TestProducer(t *testing.T) {
	_, url := servertest.Start(t)
	c := client.New(url, client.Options{})
	w := client.NewWorker(c, client.WorkerOptions{Queues: []string{"words"}},
		func(_ context.Context, task *taskwire.Task) (any, error) { return strings.ToUpper(task.Text), nil })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = w.Run(ctx) }()

	var out bytes.Buffer
	if err := run(t.Context(), url, []string{"hello world", "abc"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], `"hello world": completed "HELLO WORLD"`) ||
		!strings.HasSuffix(lines[1], `"abc": completed "ABC"`) {
		t.Fatalf("output:\n%s", out.String())
	}
}

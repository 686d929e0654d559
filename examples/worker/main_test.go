package main

import (
	"context"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
	"github.com/taskwire/taskwire/internal/servertest"
)

// TestWorker runs the example against an in-process server: it completes
// the tasks of its queue with their word counts, fails the empty one, and
// unregisters when stopped.
func TestWorker(t *testing.T) {
	_, url := servertest.Start(t)
	c := client.New(url, client.Options{})
	texts := map[string]string{"one two three": `{"words":3}`, "taskwire": `{"words":1}`, "   ": ""}
	ids := map[string]string{}
	for text := range texts {
		task, err := c.CreateTask(t.Context(), taskwire.CreateParams{Text: text, Queue: "words"})
		if err != nil {
			t.Fatal(err)
		}
		ids[text] = task.ID
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, url) }()

	for text, want := range texts {
		task := waitFinal(t, c, ids[text])
		if want == "" {
			if task.Status != taskwire.StatusFailed || task.Error != "no words to count" {
				t.Errorf("%q: %s %q, want failed", text, task.Status, task.Error)
			}
		} else if task.Status != taskwire.StatusCompleted || string(task.Result) != want {
			t.Errorf("%q: %s %s, want %s", text, task.Status, task.Result, want)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	if ws, err := c.Workers(t.Context()); err != nil || len(ws.Workers) != 0 {
		t.Fatalf("workers after stop: %+v, %v", ws, err)
	}
}

// waitFinal polls a task for up to 20 seconds until it is final.
func waitFinal(t *testing.T, c *client.Client, id string) *taskwire.Task {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		task, err := c.GetTask(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if task.Status.Final() {
			return task
		}
	}
	t.Fatalf("task %s not final within 20s", id)
	return nil
}

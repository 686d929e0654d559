// Command producer creates one task per argument on the "words" queue, in
// one batch, waits for each to end and prints its result.
//
//	TASKWIRE_SERVER=http://127.0.0.1:7700 go run ./examples/producer "a b c" "hello world"
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

func main() {
	server := os.Getenv("TASKWIRE_SERVER")
	if server == "" {
		server = "http://127.0.0.1:7700"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, server, os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run creates a task per text and prints each outcome to out.
func run(ctx context.Context, server string, texts []string, out io.Writer) error {
	c := client.New(server, client.Options{Token: os.Getenv("TASKWIRE_TOKEN")})
	batch := c.NewBatch()
	created := make([]*client.Result[taskwire.Task], len(texts))
	for i, text := range texts {
		created[i] = batch.CreateTask(taskwire.CreateParams{Text: text, Queue: "words"})
	}
	if err := batch.Send(ctx); err != nil {
		return err
	}
	for _, r := range created {
		task, err := r.Get()
		if err != nil {
			return err
		}
		if task, err = waitFinal(ctx, c, task.ID); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s %q: %s %s%s\n", task.ID, task.Text, task.Status, task.Result, task.Error)
	}
	return nil
}

// waitFinal polls a task until it is completed or failed.
func waitFinal(ctx context.Context, c *client.Client, id string) (*taskwire.Task, error) {
	for {
		task, err := c.GetTask(ctx, id)
		if err != nil || task.Status.Final() {
			return task, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Command worker is a taskwire worker written with the Go SDK: it counts
// the words of each task of the "words" queue, four tasks at a time, until
// interrupted (SIGINT or SIGTERM), then finishes its running tasks and
// unregisters.
//
//	TASKWIRE_SERVER=http://127.0.0.1:7700 go run ./examples/worker
package main

import (
	"context"
	"errors"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	server := os.Getenv("TASKWIRE_SERVER")
	if server == "" {
		server = "http://127.0.0.1:7700"
	}
	if err := run(ctx, server); err != nil {
		log.Fatal(err)
	}
}

// run works on the "words" queue until ctx ends.
func run(ctx context.Context, server string) error {
	c := client.New(server, client.Options{Token: os.Getenv("TASKWIRE_TOKEN")})
	w := client.NewWorker(c, client.WorkerOptions{Queues: []string{"words"}, Concurrency: 4}, countWords)
	return w.Run(ctx)
}

// countWords is the handler: its result completes the task, its error
// fails it.
func countWords(_ context.Context, t *taskwire.Task) (any, error) {
	words := strings.Fields(t.Text)
	if len(words) == 0 {
		return nil, errors.New("no words to count")
	}
	return map[string]int{"words": len(words)}, nil
}

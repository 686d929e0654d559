// Package client is the Go SDK of taskwire: a Client with one method per
// JSON-RPC method of the server, batches, the event stream and the result
// stream, and a Worker that runs a handler for each task it claims.
//
// The wire types (taskwire.Task, the params and results of every method,
// the error codes and events) come from the root package
// github.com/taskwire/taskwire. The package depends on the standard
// library and that package only.
//
// Errors the server answers are *Error values carrying the JSON-RPC code,
// message and data; IsNotFound, IsRateLimited, IsConflict, IsUnavailable
// and RetryAfter read them. A 401 is an *HTTPError, which IsUnauthorized
// reads. Calls that are safe to repeat are retried on
// -32000 (rate limited) and -32001 (backend unavailable), and on failed
// connections, with backoff and jitter, honouring the server's
// retryAfterMs, within the context and Options.MaxAttempts.
//
// A worker in a few lines:
//
//	c := client.New("http://127.0.0.1:7700", client.Options{})
//	w := client.NewWorker(c, client.WorkerOptions{Concurrency: 4},
//		func(ctx context.Context, t *taskwire.Task) (any, error) {
//			return map[string]int{"length": len(t.Text)}, nil
//		})
//	err := w.Run(ctx) // until ctx ends; then drains and unregisters
package client

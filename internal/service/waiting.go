package service

import (
	"fmt"
	"sync"
	"time"

	"github.com/taskwire/taskwire"
)

// DefaultMaxWaitingClaims is how many long-poll claims (waitMs > 0) one
// worker may have waiting at once by default.
const DefaultMaxWaitingClaims = 4

// waitRetry is the retryAfterMs of a claim refused for too many waiting.
const waitRetry = time.Second

// waiters counts the long-poll claims waiting per worker, so that one
// worker cannot tie up the server with waiting requests.
type waiters struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newWaiters(max int) *waiters { return &waiters{max: max, n: map[string]int{}} }

// enter admits one more waiting claim of worker, or returns the -32000
// error that refuses it: data {method, limit, windowMs: 0 (a count of
// calls at once, not per window), retryAfterMs}. Each admitted claim must
// leave.
func (w *waiters) enter(worker string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[worker] >= w.max {
		return &taskwire.Error{Code: taskwire.CodeRateLimited,
			Message: fmt.Sprintf("Too many waiting claims for worker %s: at most %d at once", worker, w.max),
			Data: map[string]any{"method": taskwire.MethodTaskClaim, "limit": w.max,
				"windowMs": 0, "retryAfterMs": waitRetry.Milliseconds()}}
	}
	w.n[worker]++
	return nil
}

func (w *waiters) leave(worker string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[worker]--; w.n[worker] <= 0 {
		delete(w.n, worker)
	}
}

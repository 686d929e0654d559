package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/budget"
	"github.com/taskwire/taskwire/internal/rpc"
	"github.com/taskwire/taskwire/internal/store"
)

// DefaultResultBudget is how many bytes of large results task.get answers
// may hold in memory at once (Config.ResultBudget): one of the largest,
// or as many smaller ones as add up to it. An answer holds its result's
// bytes once: the response is written around the result read.
const DefaultResultBudget = taskwire.MaxResultBytes

// resultWait is the longest a task.get waits for its share of the result
// budget before it is refused.
const resultWait = 30 * time.Second

// errResultBudget refuses a task.get whose result does not fit in the
// budget now: safe to retry.
func errResultBudget() error {
	return &store.UnavailableError{Backend: "memory", RetryAfter: time.Second,
		Err: errors.New("the results being answered fill the memory budget")}
}

// reserveResult takes the size of task id's result from the result budget
// when it is large (over taskwire.ListResultLimit; a smaller one is not
// counted), and returns the function that gives it back. A call waits up
// to resultWait for its share, unless it is one of a batch: a batch is
// answered whole, so its calls would wait for each other; it is refused
// at once instead. A result larger than the whole budget takes all of it.
func (s *Service) reserveResult(ctx context.Context, id string) (release func(), err error) {
	size, err := s.store.ResultSize(ctx, id)
	if err != nil || size <= taskwire.ListResultLimit {
		// No result, or no task: GetTask says which.
		return func() {}, nil
	}
	n := min(size, s.cfg.ResultBudget)
	if rpc.InBatch(ctx) {
		if !s.results.TryAcquire(n) {
			return nil, errResultBudget()
		}
		return sync.OnceFunc(func() { s.results.Release(n) }), nil
	}
	release, err = budget.Take(ctx, s.results, n, resultWait)
	if errors.Is(err, budget.ErrExhausted) {
		err = errResultBudget()
	}
	return release, err
}

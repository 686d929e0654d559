// Package budget hands out shares of a memory budget (request bodies being
// read, large results being answered) to callers that can wait a while
// for theirs.
package budget

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrExhausted is Take's error when no share came free within its wait.
var ErrExhausted = errors.New("budget: no room within the wait")

// Take takes n units of sem, waiting for them up to wait. release gives
// them back and may be called more than once. It returns ErrExhausted
// when the wait ran out, and ctx's error when ctx ended first.
func Take(ctx context.Context, sem *semaphore.Weighted, n int64, wait time.Duration) (release func(), err error) {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := sem.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrExhausted
	}
	return sync.OnceFunc(func() { sem.Release(n) }), nil
}

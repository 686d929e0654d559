package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// TestTake takes a share, waits in vain for a second one, is answered
// with the caller's error once its context ends, and gets the share once
// the first is given back (twice, counted once).
func TestTake(t *testing.T) {
	sem := semaphore.NewWeighted(10)
	release, err := Take(t.Context(), sem, 8, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Take(t.Context(), sem, 4, 10*time.Millisecond); !errors.Is(err, ErrExhausted) {
		t.Fatalf("take beyond the budget: %v, want ErrExhausted", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Take(ctx, sem, 4, time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("take on an ended context: %v, want context.Canceled", err)
	}
	release()
	release()
	if sem.TryAcquire(11) {
		t.Fatal("a share given back twice counted twice")
	}
	if !sem.TryAcquire(10) {
		t.Fatal("the whole budget is not free after the release")
	}
}

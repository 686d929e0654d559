package redispg

import (
	"context"
	"errors"
	"testing"

	"github.com/taskwire/taskwire/internal/store"
)

// TestRetryGivesUpAsUnavailable: an operation that loses every race is
// given up after maxRetries tries as a *store.UnavailableError (-32001,
// safe to retry), not an internal error; one that wins, or fails for
// another reason, returns at once.
func TestRetryGivesUpAsUnavailable(t *testing.T) {
	t.Parallel()
	tries := 0
	err := retry(context.Background(), func() error { tries++; return errRaced })
	var unavailable *store.UnavailableError
	if !errors.As(err, &unavailable) || tries != maxRetries {
		t.Errorf("always raced: %v after %d tries, want an UnavailableError after %d", err, tries, maxRetries)
	}
	boom := errors.New("boom")
	tries = 0
	err = retry(context.Background(), func() error {
		tries++
		if tries < 3 {
			return errRaced
		}
		return boom
	})
	if !errors.Is(err, boom) || tries != 3 {
		t.Errorf("raced twice then failed: %v after %d tries, want boom after 3", err, tries)
	}
}

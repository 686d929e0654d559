package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/service"
	"github.com/taskwire/taskwire/internal/store/sqlite"
)

// A claim whose caller has ended (a token revoked, say) takes no task,
// even with one ready, and answers the cause it ended with, every time.
func TestClaimOfAnEndedCallerTakesNothing(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "tw.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	svc := service.New(st, service.Config{RateLimits: map[string]service.Limit{}})
	ctx := t.Context()
	if _, err := svc.RegisterWorker(ctx, &taskwire.RegisterParams{WorkerID: "w1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateTask(ctx, &taskwire.CreateParams{Text: "ready"}); err != nil {
		t.Fatal(err)
	}
	revoked := errors.New("token revoked")
	for range 50 { // the store's submit picks at random between a queued op and an ended context
		ended, cancel := context.WithCancelCause(ctx)
		cancel(revoked)
		if res, err := svc.ClaimTasks(ended, &taskwire.ClaimParams{WorkerID: "w1"}); !errors.Is(err, revoked) {
			t.Fatalf("claim of an ended caller: %+v, %v; want %v", res, err, revoked)
		}
	}
}

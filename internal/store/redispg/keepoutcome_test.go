package redispg

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/taskwire/taskwire/internal/store"
)

// flipCtx is a context whose Err turns to Canceled when dead is set (no
// Done channel): the caller went away right after its transition lost a
// race.
type flipCtx struct {
	context.Context
	dead *atomic.Bool
}

func (c flipCtx) Err() error {
	if c.dead.Load() {
		return context.Canceled
	}
	return nil
}

// TestIdenticalCompletionKeepsOutcome: of two identical completions (a
// client's resend while the first is in flight), the first commits and
// the second loses the race and then its caller goes away; the second
// must not take back the outcome the first committed with: the result
// stays readable, and after Redis is lost the reconciler finalizes the
// task from it.
func TestIdenticalCompletionKeepsOutcome(t *testing.T) {
	env, trap, st := trappedStore(t)
	ctx := t.Context()
	now := time.Now().UTC()
	claimedBy(t, st, "t-dup", "w1", now)
	p := store.CompleteTaskParams{ID: "t-dup", WorkerID: "w1", Result: []byte(`{"ok":1}`), Now: now}
	var dead atomic.Bool
	var aErr error
	// The second call staged and sent its transition; before it runs, the
	// first completes; then the second call's caller goes away.
	trap.arm("task.completed", func(c context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		_, _, aErr = st.CompleteTask(ctx, p)
		dead.Store(true)
		return next(c, cmd)
	})
	_, _, bErr := st.CompleteTask(flipCtx{context.Background(), &dead}, p)
	t.Logf("first (acknowledged): err=%v; second: err=%v", aErr, bErr)
	if aErr != nil {
		t.Fatalf("the first completion failed: %v", aErr)
	}
	var staged, results int
	st.pg.QueryRow(ctx, "SELECT count(*) FROM staged_results WHERE task_id = 't-dup'").Scan(&staged)
	st.pg.QueryRow(ctx, "SELECT count(*) FROM results WHERE task_id = 't-dup'").Scan(&results)
	if staged != 1 || results != 1 {
		t.Errorf("after: staged_results=%d results=%d, want 1 and 1", staged, results)
	}
	got, err := st.GetTask(ctx, "t-dup")
	if err != nil {
		t.Errorf("GetTask of the acknowledged completion: %v", err)
	} else {
		t.Logf("GetTask: status=%s result=%s", got.Status, got.Result)
	}
	// Redis lost before the persister wrote the completed row.
	time.Sleep(reconcileGrace + 500*time.Millisecond)
	deleteKeys(ctx, env.rdb, "{"+env.prefix+"}:*")
	if _, err := st.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = st.GetTask(ctx, "t-dup")
	if err != nil || got.Status != "completed" {
		t.Errorf("after Redis loss: %+v, %v; want the acknowledged completion", got, err)
	}
}

// failNextPipeline fails the next pipeline once armed (a transient Redis
// error on a read).
type failNextPipeline struct{ armed atomic.Bool }

func (h *failNextPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *failNextPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *failNextPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.armed.CompareAndSwap(true, false) {
			err := errors.New("read tcp: connection reset by peer")
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}

// TestResentCompletionKeepsOutcome: the completion's script runs twice
// (go-redis resends it after a lost reply; the second run loses the
// version check), then the read that follows meets a transient Redis
// error. The call answers an error, but its transition committed: it
// must not take back its own outcome, and the worker's retry finds it.
func TestResentCompletionKeepsOutcome(t *testing.T) {
	env, trap, st := trappedStore(t)
	fail := &failNextPipeline{}
	env.rdb.(*redis.Client).AddHook(fail)
	ctx := t.Context()
	now := time.Now().UTC()
	claimedBy(t, st, "t-rf", "w1", now)
	p := store.CompleteTaskParams{ID: "t-rf", WorkerID: "w1", Result: []byte(`{"ok":3}`), Now: now}
	trap.arm("task.completed", func(c context.Context, cmd redis.Cmder, next redis.ProcessHook) error {
		if err := next(c, cmd); err != nil {
			return err
		}
		fail.armed.Store(true)
		return next(c, cmd)
	})
	_, _, err := st.CompleteTask(ctx, p)
	t.Logf("first call: %v", err)
	if _, _, err = st.CompleteTask(ctx, p); err != nil {
		t.Fatalf("the worker's retry: %v, want the completion that committed", err)
	}
	if got, err := st.GetTask(ctx, "t-rf"); err != nil || string(got.Result) != `{"ok":3}` {
		t.Errorf("GetTask after an acknowledged completion: %v", err)
	}
}

// claimedBy creates task id and has worker (registered here) claim it.
func claimedBy(t *testing.T, st *Store, id, worker string, now time.Time) {
	t.Helper()
	register(t, st, worker, now)
	if _, _, err := st.CreateTask(t.Context(), store.CreateTaskParams{Task: readyTask(id, now), Now: now}); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, st, worker, now); len(got) != 1 || got[0].ID != id {
		t.Fatalf("claimed %v, want %s", got, id)
	}
}

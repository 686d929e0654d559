package redispg

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// afterGet runs a function once, right after the first GET of a given key
// has been answered.
type afterGet struct {
	done atomic.Bool
	key  string
	then func()
}

func (h *afterGet) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *afterGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *afterGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); cmd.Name() == "get" && len(args) == 2 && args[1] == h.key {
			if h.done.CompareAndSwap(false, true) {
				h.then()
			}
		}
		return err
	}
}

// TestStoresStartedTogetherStartEventsAtZero: processes of a brand-new
// deployment that start together set its event counter to 0 once; none
// takes the other's fresh counter for one Redis lost, which would move
// event ids 10,000,000 ahead.
func TestStoresStartedTogetherStartEventsAtZero(t *testing.T) {
	t.Parallel()
	env := newTestEnv(t)
	key := newKeys(env.prefix).eventSeq()
	// The second process reads the counter as missing, then the first
	// one sets it up completely, then the second one goes on.
	env.rdb.(*redis.Client).AddHook(&afterGet{key: key, then: func() {
		env.open(t, Options{ReconcileInterval: -1})
	}})
	env.open(t, Options{ReconcileInterval: -1})
	seq, err := env.rdb.Get(t.Context(), key).Int64()
	if err != nil || seq != 0 {
		t.Fatalf("event counter = %d, %v; want 0", seq, err)
	}
}

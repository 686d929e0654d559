package redispg

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/store"
)

// BenchmarkRoundTrip runs b.N tasks through create, claim and complete on
// one store the way a server sees JSON-RPC batches of 100: 32 callers,
// each creating 100 tasks at once, claiming them 10 per claim at once and
// completing them at once. It reports tasks/s without HTTP or JSON-RPC.
func BenchmarkRoundTrip(b *testing.B) {
	st := newTestStore(b, Options{})
	const callers, batch = 32, 100
	now := time.Now().UTC()
	for w := range callers {
		if err := st.RegisterWorker(b.Context(), store.RegisterWorkerParams{ID: fmt.Sprintf("w%d", w), Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	var next, seq atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range callers {
		worker := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				first := int(next.Add(batch)) - batch
				n := min(batch, b.N-first)
				if n <= 0 {
					return
				}
				if err := benchBatch(b, st, worker, n, &seq); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// benchBatch creates n tasks concurrently, claims up to n (10 per claim,
// concurrently) and completes what it claimed, concurrently.
func benchBatch(b *testing.B, st *Store, worker string, n int, seq *atomic.Int64) error {
	ctx := b.Context()
	now := time.Now().UTC()
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			tk := readyTask(fmt.Sprintf("b%d", seq.Add(1)), now)
			if _, _, err := st.CreateTask(ctx, store.CreateTaskParams{Task: tk, Now: now}); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	var claimed []*taskwire.Task
	for i := 0; i < n; i += 10 {
		wg.Go(func() {
			got, err := st.ClaimTasks(ctx, store.ClaimTasksParams{WorkerID: worker, MaxTasks: min(10, n-i), Now: now})
			if err != nil {
				fail(err)
			}
			mu.Lock()
			claimed = append(claimed, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, t := range claimed {
		wg.Go(func() {
			if _, _, err := st.CompleteTask(ctx, store.CompleteTaskParams{ID: t.ID, WorkerID: worker,
				Result: []byte(fmt.Sprintf(`{"n":%d}`, i)), Now: now}); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return firstErr
}

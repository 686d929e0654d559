package sqlite

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire/internal/store"
)

// BenchmarkCreate creates b.N tasks from 1, 8 and 64 goroutines. Each
// create is durable (fsynced) before it returns; group commit lets
// concurrent creates share a commit, so tasks/s grows with concurrency.
func BenchmarkCreate(b *testing.B) {
	for _, workers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", workers), func(b *testing.B) {
			s := open(b, Options{})
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					for n := int(next.Add(1)); n <= b.N; n = int(next.Add(1)) {
						tk := task(n)
						if _, _, err := s.CreateTask(b.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkRoundTrip runs b.N tasks through create, claim and complete on
// the store from 64 goroutines, as the writer sees a loaded server: it
// reports tasks/s through the single writer, without HTTP or JSON-RPC.
func BenchmarkRoundTrip(b *testing.B) {
	s := open(b, Options{})
	const workers = 64
	for w := range workers {
		if err := s.RegisterWorker(b.Context(), store.RegisterWorkerParams{ID: fmt.Sprintf("w%d", w), Now: t0.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := range workers {
		worker := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for n := int(next.Add(1)); n <= b.N; n = int(next.Add(1)) {
				if err := roundTrip(b, s, worker, n); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// roundTrip creates task n, claims one task for worker and completes it.
func roundTrip(b *testing.B, s *Store, worker string, n int) error {
	tk := task(n)
	if _, _, err := s.CreateTask(b.Context(), store.CreateTaskParams{Task: tk, Now: tk.CreatedAt}); err != nil {
		return err
	}
	later := tk.CreatedAt.Add(time.Hour) // every task created so far is ready
	claimed, err := s.ClaimTasks(b.Context(), store.ClaimTasksParams{WorkerID: worker, MaxTasks: 1, Now: later})
	if err != nil || len(claimed) == 0 {
		return fmt.Errorf("claim: %v (%d tasks)", err, len(claimed))
	}
	_, _, err = s.CompleteTask(b.Context(), store.CompleteTaskParams{ID: claimed[0].ID, WorkerID: worker,
		Result: []byte(`{"n":1}`), Now: later})
	return err
}

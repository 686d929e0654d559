package sqlite

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

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

package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/store"
)

// BenchmarkEndToEnd creates, claims and completes b.N tasks over HTTP with
// 32 concurrent clients and reports tasks/s end to end: once with one
// request per call, once with JSON-RPC batches of 100 calls.
func BenchmarkEndToEnd(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			bd := setup(b)
			const clients = 32
			for w := 0; w < clients; w++ {
				mustCall(b, bd.cl, taskwire.MethodSystemRegister, map[string]any{"id": fmt.Sprintf("bw%d", w)})
			}
			b.ResetTimer()
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func(worker string) {
					defer wg.Done()
					for {
						first := int(next.Add(int64(batch))) - batch
						n := min(batch, b.N-first)
						if n <= 0 {
							return
						}
						roundTrip(b, bd.cl, worker, n)
					}
				}(fmt.Sprintf("bw%d", w))
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
		})
	}
}

// roundTrip creates n tasks, claims n tasks and completes them, each phase
// in one batch (a single request when n is 1). Params are structs and only
// the claimed ids are decoded, to keep the load generator's share of the
// CPU small.
func roundTrip(b *testing.B, cl *rpctest.Client, worker string, n int) {
	type (
		createParams struct {
			Text string `json:"text"`
		}
		claimParams struct {
			WorkerID string `json:"workerId"`
			MaxTasks int    `json:"maxTasks"`
		}
		completeParams struct {
			ID       string         `json:"id"`
			WorkerID string         `json:"workerId"`
			Result   map[string]int `json:"result"`
		}
		claimed struct {
			Tasks []struct {
				ID string `json:"id"`
			} `json:"tasks"`
		}
	)
	calls := make([]rpctest.Call, n)
	for i := range calls {
		calls[i] = rpctest.Call{Method: taskwire.MethodTaskCreate, Params: createParams{Text: "bench"}}
	}
	mustSend(b, cl, calls)
	claims := make([]rpctest.Call, (n+9)/10)
	for i := range claims {
		claims[i] = rpctest.Call{Method: taskwire.MethodTaskClaim,
			Params: claimParams{WorkerID: worker, MaxTasks: min(10, n-10*i)}}
	}
	var ids []string
	for _, r := range mustSend(b, cl, claims) {
		var res claimed
		if err := unmarshal(r.Result, &res); err != nil {
			b.Fatal(err)
		}
		for _, t := range res.Tasks {
			ids = append(ids, t.ID)
		}
	}
	completes := make([]rpctest.Call, len(ids))
	for i, id := range ids {
		completes[i] = rpctest.Call{Method: taskwire.MethodTaskComplete,
			Params: completeParams{ID: id, WorkerID: worker, Result: map[string]int{"n": i}}}
	}
	if len(completes) > 0 {
		mustSend(b, cl, completes)
	}
}

// BenchmarkClaimLatency measures task.claim latency over HTTP with 50
// concurrent workers, each claiming once every claimInterval (as a worker
// that spends that long on a task would: 2,500 claims/s offered in all),
// while 10,000 or 1,000,000 tasks are queued, and reports p50 and p99 in
// ms. Without the pause the benchmark would measure queueing (50 callers
// in a closed loop wait 50/throughput each), which BenchmarkEndToEnd
// covers. Workers claim at random moments of their interval
// (arrival=spread), as independent workers do, or all at the same instant
// (arrival=burst), the worst case: 50 claims queued behind each other
// every interval. The 1M cases take a while to fill and run only with
// -bench.
func BenchmarkClaimLatency(b *testing.B) {
	for _, queued := range []int{10_000, 1_000_000} {
		for _, arrival := range []string{"spread", "burst"} {
			b.Run(fmt.Sprintf("queued=%d/arrival=%s", queued, arrival), func(b *testing.B) {
				claimLatency(b, queued, arrival == "burst")
			})
		}
	}
}

// claimLatency is one case of BenchmarkClaimLatency.
func claimLatency(b *testing.B, queued int, burst bool) {
	bd := setup(b)
	fill(b, bd.srv.svc.Store(), queued+b.N)
	const workers = 50
	for w := 0; w < workers; w++ {
		mustCall(b, bd.cl, taskwire.MethodSystemRegister, map[string]any{"id": fmt.Sprintf("lw%d", w)})
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			if !burst {
				time.Sleep(rand.N(claimInterval))
			}
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				t0 := time.Now()
				mustCall(b, bd.cl, taskwire.MethodTaskClaim, map[string]any{"workerId": worker})
				lat[i] = time.Since(t0)
				time.Sleep(claimInterval - lat[i])
			}
		}(fmt.Sprintf("lw%d", w))
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
}

// fill queues n pending tasks straight into the store, 64 writers at once.
func fill(b *testing.B, st store.Store, n int) {
	b.Helper()
	now := time.Now().UTC()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				t := taskwire.Task{ID: fmt.Sprintf("t-%026d", i), Queue: taskwire.DefaultQueue,
					Text: "queued", Status: taskwire.StatusPending, Priority: int(i % 101),
					MaxAttempts: 3, LeaseMs: taskwire.DefaultLeaseMs, RunAt: now, CreatedAt: now, UpdatedAt: now}
				if _, _, err := st.CreateTask(context.Background(), store.CreateTaskParams{Task: t, Now: now}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// claimInterval is how often each worker of BenchmarkClaimLatency claims.
const claimInterval = 20 * time.Millisecond

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mustCall(tb testing.TB, cl *rpctest.Client, method string, params any) {
	tb.Helper()
	if err := cl.Call(context.Background(), method, params, nil); err != nil {
		tb.Fatalf("%s: %v", method, err)
	}
}

// mustSend sends calls as one batch, or as a single request object when
// there is one call, and fails on any error.
func mustSend(tb testing.TB, cl *rpctest.Client, calls []rpctest.Call) []rpctest.Response {
	tb.Helper()
	if len(calls) == 1 {
		var r rpctest.Response
		err := cl.Call(context.Background(), calls[0].Method, calls[0].Params, &r.Result)
		if err != nil {
			tb.Fatalf("%s: %v", calls[0].Method, err)
		}
		return []rpctest.Response{r}
	}
	resps, err := cl.Batch(context.Background(), calls)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range resps {
		if r.Error != nil {
			tb.Fatalf("batch call: %v", r.Error)
		}
	}
	return resps
}

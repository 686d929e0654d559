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
	"github.com/taskwire/taskwire/internal/gcheadroom"
	"github.com/taskwire/taskwire/internal/rpctest"
	"github.com/taskwire/taskwire/internal/store"
)

// BenchmarkEndToEnd creates, claims and completes b.N tasks over HTTP with
// 32 concurrent clients and reports tasks/s end to end: once with one
// request per call, once with JSON-RPC batches of 100 calls.
func BenchmarkEndToEnd(b *testing.B) {
	defer gcheadroom.Keep(gcheadroom.Default)() // as taskwire serve runs
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			bd := setup(b)
			const clients = 32
			for w := 0; w < clients; w++ {
				mustCall(b, bd.cl, taskwire.MethodSystemRegister, map[string]any{"id": fmt.Sprintf("bw%d", w)})
			}
			b.ResetTimer()
			cpu := cpuMeter(b)
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
						if err := bd.cl.RoundTrip(context.Background(), worker, n); err != nil {
							b.Error(err)
							return
						}
					}
				}(fmt.Sprintf("bw%d", w))
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
			cpu()
		})
	}
}

// BenchmarkClaimLatency measures task.claim latency over HTTP with 50
// concurrent workers, each claiming once every interval (as a worker that
// spends that long on a task would: at 20 ms, 2,500 claims/s offered in
// all), while 10,000 or 1,000,000 tasks are queued, and reports p50 and
// p99 in ms. Without the pause the benchmark would measure queueing (50
// callers in a closed loop wait 50/throughput each), which
// BenchmarkEndToEnd covers. Workers claim at random moments
// (arrival=random), as independent workers do: each worker's claims are a
// Poisson process, one claim per interval on average. A fixed period per
// worker would not stay random: the workers one batch answers together,
// or one late timer wakes together, would claim together from then on,
// until the load became bursts. Or they claim all at the same instant
// (arrival=burst), the worst case: 50 claims queued behind each other
// every interval. The longer intervals (1,000 and 500 claims/s offered)
// show how latency grows with load. The 1M cases take a while to fill and
// run only with -bench.
func BenchmarkClaimLatency(b *testing.B) {
	defer gcheadroom.Keep(gcheadroom.Default)() // as taskwire serve runs
	type load struct {
		queued   int
		arrival  string
		interval time.Duration
	}
	var loads []load
	for _, queued := range []int{10_000, 1_000_000} {
		for _, arrival := range []string{"random", "burst"} {
			loads = append(loads, load{queued, arrival, 20 * time.Millisecond})
		}
	}
	for _, interval := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond} {
		loads = append(loads, load{10_000, "random", interval})
	}
	for _, l := range loads {
		b.Run(fmt.Sprintf("queued=%d/arrival=%s/interval=%s", l.queued, l.arrival, l.interval), func(b *testing.B) {
			claimLatency(b, l.queued, l.arrival == "burst", l.interval, claimAccepted)
		})
	}
}

// BenchmarkRefusedClaimLatency is BenchmarkClaimLatency's load at 2,500
// claims/s with random arrivals and 10,000 queued, made of claims the
// server refuses while it validates their params (maxTasks 11: -32602),
// before any store work. It measures what every claim pays besides the
// store (HTTP over loopback, JSON-RPC, the load generator, the machine's
// scheduling): the floor under BenchmarkClaimLatency's figures, to read
// them against in the same run.
func BenchmarkRefusedClaimLatency(b *testing.B) {
	defer gcheadroom.Keep(gcheadroom.Default)() // as taskwire serve runs
	claimLatency(b, 10_000, false, 20*time.Millisecond, claimRefused)
}

// claimAccepted claims a task for worker and fails b on any error.
func claimAccepted(b *testing.B, cl *rpctest.Client, worker string) {
	mustCall(b, cl, taskwire.MethodTaskClaim, map[string]any{"workerId": worker})
}

// claimRefused sends worker a claim of 11 tasks, one more than allowed,
// and fails b unless it is refused with -32602.
func claimRefused(b *testing.B, cl *rpctest.Client, worker string) {
	err := cl.Call(context.Background(), taskwire.MethodTaskClaim, map[string]any{"workerId": worker, "maxTasks": taskwire.MaxClaimTasks + 1}, nil)
	if e, ok := err.(*taskwire.Error); !ok || e.Code != taskwire.CodeInvalidParams {
		b.Fatalf("claim of %d tasks: want -32602, got %v", taskwire.MaxClaimTasks+1, err)
	}
}

// claimLatency is one case of BenchmarkClaimLatency: 50 workers each
// calling claim once per interval on average.
func claimLatency(b *testing.B, queued int, burst bool, interval time.Duration, claim func(*testing.B, *rpctest.Client, string)) {
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
	cpu := cpuMeter(b)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			due := time.Now()
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				if burst {
					due = due.Add(interval)
				} else {
					due = due.Add(time.Duration(rand.ExpFloat64() * float64(interval)))
				}
				time.Sleep(time.Until(due))
				t0 := time.Now()
				claim(b, bd.cl, worker)
				lat[i] = time.Since(t0)
			}
		}(fmt.Sprintf("lw%d", w))
	}
	wg.Wait()
	b.StopTimer()
	cpu()
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

// cpuMeter starts measuring the CPU time the process uses (server, store
// and load generator alike, user and system); the function it returns
// reports it per operation as cpu-us/op. The figure moves far less from
// run to run than a latency tail does, so it shows what a change costs or
// saves in fewer runs.
func cpuMeter(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		if end, _ := processCPU(); ok {
			b.ReportMetric(float64((end-start).Microseconds())/float64(b.N), "cpu-us/op")
		}
	}
}

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
	resps, err := cl.Send(context.Background(), calls)
	if err != nil {
		tb.Fatal(err)
	}
	return resps
}

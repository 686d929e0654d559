package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskwire/taskwire"
	"github.com/taskwire/taskwire/internal/rpctest"
)

// BenchmarkModes runs the end-to-end create -> claim -> complete workload
// of internal/server's BenchmarkEndToEnd over HTTP against server
// processes: embedded (SQLite), and distributed (Redis + PostgreSQL) with
// one and with two processes, the clients spread over them; with one
// request per call and with JSON-RPC batches of 100 calls. It reports
// tasks/s end to end.
func BenchmarkModes(b *testing.B) {
	modes := []struct {
		name      string
		processes int
	}{{"embedded", 1}, {"distributed", 1}, {"distributed", 2}}
	for _, m := range modes {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/processes=%d/batch=%d", m.name, m.processes, batch), func(b *testing.B) {
				var clients []*rpctest.Client
				if m.name == "embedded" {
					clients = append(clients, rpctest.New(startChild(b, "--data", b.TempDir(), "--no-rate-limit").URL))
				} else {
					env := newDistEnv(b)
					for range m.processes {
						clients = append(clients, rpctest.New(env.start(b, "").URL))
					}
				}
				benchRoundTrips(b, clients, batch)
			})
		}
	}
}

// benchRoundTrips has 32 concurrent callers, each on one of clients in
// turn, create, claim and complete b.N tasks, batch at a time.
func benchRoundTrips(b *testing.B, clients []*rpctest.Client, batch int) {
	const callers = 32
	for w := range callers {
		benchSend(b, clients[w%len(clients)], []rpctest.Call{{Method: taskwire.MethodSystemRegister,
			Params: map[string]any{"id": fmt.Sprintf("bw%d", w)}}})
	}
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			cl, worker := clients[w%len(clients)], fmt.Sprintf("bw%d", w)
			for {
				first := int(next.Add(int64(batch))) - batch
				n := min(batch, b.N-first)
				if n <= 0 {
					return
				}
				if err := cl.RoundTrip(context.Background(), worker, n); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
}

// benchSend sends calls as one batch and fails on any error.
func benchSend(b *testing.B, cl *rpctest.Client, calls []rpctest.Call) []rpctest.Response {
	resps, err := cl.Batch(context.Background(), calls)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range resps {
		if r.Error != nil {
			b.Fatalf("%v", r.Error)
		}
	}
	return resps
}

package redispg

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkTaskEvents reads the three events of one task from a log of
// n events, the task's at its newest end: TaskEvents passes over the
// whole stream, so the time grows with n.
func BenchmarkTaskEvents(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("log=%d", n), func(b *testing.B) {
			s := newTestStore(b, Options{})
			fillEvents(b, s, n)
			b.ResetTimer()
			for b.Loop() {
				evs, err := s.TaskEvents(b.Context(), "t-last", 100)
				if err != nil || len(evs) != 3 {
					b.Fatalf("TaskEvents = %d events, %v; want 3", len(evs), err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// fillEvents appends n task events to s's stream, one task per event but
// for the last three, which belong to task "t-last".
func fillEvents(b *testing.B, s *Store, n int) {
	b.Helper()
	const batch = 10_000
	for from := 1; from <= n; from += batch {
		pipe := s.rdb.Pipeline()
		for seq := from; seq < from+batch && seq <= n; seq++ {
			task := "t-" + strconv.Itoa(seq)
			if seq > n-3 {
				task = "t-last"
			}
			pipe.XAdd(b.Context(), &redis.XAddArgs{Stream: s.k.events(), ID: strconv.Itoa(seq) + "-0",
				Values: []string{"type", "task.updated", "task", task, "payload", `{"id":"` + task + `"}`, "meta", `{}`, "ts", "1"}})
		}
		if _, err := pipe.Exec(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

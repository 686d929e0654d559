package ws_test

import (
	"context"
	"testing"

	"github.com/taskwire/taskwire"
)

// BenchmarkCallRoundTrip: one task.get at a time over one WebSocket, and
// the same over POST /rpc on a kept-alive connection, for comparison.
func BenchmarkCallRoundTrip(b *testing.B) {
	bench := func(b *testing.B, overWS bool) {
		tb := setup(b)
		var task taskwire.Task
		if err := tb.cl.Call(context.Background(), taskwire.MethodTaskCreate, map[string]any{"text": "bench"}, &task); err != nil {
			b.Fatal(err)
		}
		params := map[string]any{"id": task.ID}
		if overWS {
			cl := dial(b, tb, nil)
			b.ResetTimer()
			for b.Loop() {
				if m := cl.response(cl.request(taskwire.MethodTaskGet, params)); m.Error != nil {
					b.Fatal(m.Error)
				}
			}
			return
		}
		b.ResetTimer()
		for b.Loop() {
			if err := tb.cl.Call(context.Background(), taskwire.MethodTaskGet, params, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("ws", func(b *testing.B) { bench(b, true) })
	b.Run("http", func(b *testing.B) { bench(b, false) })
}
